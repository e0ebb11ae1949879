// With an explicit --dead-letter-topic, a message the applier cannot apply is moved there, with its origin
// in the headers, and the applier goes on; without the option it stops (apply-bad-message.test.ts).
import kafkajs from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReplicationPipeline } from "../support/replication-pipeline.js";
import { runSql, testServices, uniqueName } from "../support/services.js";
import { compareTables, describeDifferences } from "../support/table-compare.js";

const { Kafka, logLevel } = kafkajs;
let pipeline: ReplicationPipeline;
const deadLetterTopic = uniqueName("dead_letters");

beforeAll(async () => {
  const services = testServices();
  pipeline = await ReplicationPipeline.start({
    sourceServerUrl: services.sourceUrl,
    standbys: [{ name: "d1", serverUrl: services.standbyUrls[0] as string }],
    brokers: services.kafkaBrokers,
    prefix: "apply_dlt",
    ddl: "CREATE TABLE items (id integer PRIMARY KEY, label text NOT NULL);",
    applyArgs: ["--dead-letter-topic", deadLetterTopic],
  });
}, 120_000);

afterAll(async () => {
  await pipeline?.stop();
  const admin = new Kafka({ brokers: testServices().kafkaBrokers, logLevel: logLevel.NOTHING }).admin();
  await admin.connect();
  await admin.deleteTopics({ topics: [deadLetterTopic] }).catch(() => undefined);
  await admin.disconnect();
});

describe("apply with a dead-letter topic", () => {
  it("moves a corrupt message there with its origin and keeps applying", async () => {
    await runSql(pipeline.source.url, "INSERT INTO items VALUES (1, 'before')");
    await pipeline.waitForCatchUp();
    const kafka = new Kafka({ brokers: testServices().kafkaBrokers, logLevel: logLevel.NOTHING });
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    const [sent] = await producer.send({
      topic: pipeline.topic,
      messages: [{ value: Buffer.from("not a diffrelay message"), partition: 0 }],
    });
    await producer.disconnect();
    await runSql(pipeline.source.url, "INSERT INTO items VALUES (2, 'after')");
    await pipeline.waitForCatchUp();
    expect(
      describeDifferences(
        await compareTables(pipeline.source.url, pipeline.standby("d1").db.url, ["public.items"]),
      ),
    ).toEqual([]);

    const consumer = kafka.consumer({ groupId: uniqueName("dlt_reader") });
    await consumer.connect();
    await consumer.subscribe({ topic: deadLetterTopic, fromBeginning: true });
    const letter = await new Promise<kafkajs.KafkaMessage>((resolve) => {
      void consumer.run({ eachMessage: async ({ message }) => resolve(message) });
    });
    await consumer.disconnect();
    expect(letter.value?.toString()).toBe("not a diffrelay message");
    expect(letter.headers?.["diffrelay-source-topic"]?.toString()).toBe(pipeline.topic);
    expect(letter.headers?.["diffrelay-source-offset"]?.toString()).toBe(sent?.baseOffset);
    expect(letter.headers?.["diffrelay-problem"]?.toString()).toMatch(/magic/i);
    expect((await pipeline.position("d1"))?.nextOffset).toBeGreaterThan(BigInt(sent?.baseOffset ?? "0"));
  });
});
