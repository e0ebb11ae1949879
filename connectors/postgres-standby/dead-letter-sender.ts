import type { Admin, Kafka, Producer } from "kafkajs";
import { closeQuietly } from "../../src/errors/close-quietly.js";
import { orderedProducer } from "../../src/kafka/kafka-client.js";

/**
 * Sends messages the applier cannot apply to a dead-letter topic, unchanged,
 * with where they came from and why in their headers. Only with an explicit
 * `apply.deadLetterTopic`: by default such a message stops the applier.
 */
export class DeadLetterSender {
  private constructor(
    private readonly producer: Producer,
    private readonly topic: string,
    private readonly sourceTopic: string,
  ) {}

  static async open(
    kafka: Kafka,
    admin: Admin,
    topic: string,
    sourceTopic: string,
  ): Promise<DeadLetterSender> {
    if (!(await admin.listTopics()).includes(topic)) {
      await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true });
    }
    const producer = orderedProducer(kafka, { idempotent: false });
    await producer.connect();
    return new DeadLetterSender(producer, topic, sourceTopic);
  }

  /** Resolves once Kafka holds the message durably: only then may the applier step over it. */
  async send(value: Buffer | null, offset: bigint, problem: string): Promise<void> {
    await this.producer.send({
      topic: this.topic,
      acks: -1,
      messages: [
        {
          value,
          headers: {
            "diffrelay-source-topic": this.sourceTopic,
            "diffrelay-source-partition": "0",
            "diffrelay-source-offset": offset.toString(),
            "diffrelay-problem": problem,
          },
        },
      ],
    });
  }

  async close(): Promise<void> {
    await closeQuietly(this.producer.disconnect());
  }
}
