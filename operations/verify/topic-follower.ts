import { randomBytes } from "node:crypto";
import type { Consumer, Kafka } from "kafkajs";
import { closeQuietly } from "../../src/errors/close-quietly.js";
import { decodeDataMessage } from "../../src/wire/data-message.js";

/**
 * Reads the data topic from a starting offset and remembers, per offset, the
 * commit LSNs of the transactions (chunks) its message holds: all that verify
 * needs to know which transaction the standby applies next. It uses a
 * throwaway consumer group, deleted when it stops.
 */
export class TopicFollower {
  private readonly lsns = new Map<bigint, bigint[]>();
  /** Every offset below this (and at or above `from`) has been read. */
  private readTo: bigint;
  private consumer: Consumer | null = null;
  private readonly groupId = `diffrelay-verify-${process.pid}-${randomBytes(4).toString("hex")}`;
  private failure: unknown = null;

  constructor(
    private readonly kafka: Kafka,
    private readonly topic: string,
    readonly from: bigint,
  ) {
    this.readTo = from;
  }

  async start(): Promise<void> {
    const consumer = this.kafka.consumer({
      groupId: this.groupId,
      maxWaitTimeInMs: 100,
      allowAutoTopicCreation: false,
    });
    this.consumer = consumer;
    await consumer.connect();
    await consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        try {
          for (const message of batch.messages) {
            const offset = BigInt(message.offset);
            if (offset < this.readTo) continue;
            const decoded = message.value ? decodeDataMessage(message.value) : { chunks: [] };
            this.lsns.set(
              offset,
              decoded.chunks.map((c) => c.header.commitLsn),
            );
            this.readTo = offset + 1n;
          }
        } catch (err) {
          this.failure = err;
        }
      },
    });
    // seek() takes effect once run() has started.
    consumer.seek({ topic: this.topic, partition: 0, offset: this.from.toString() });
  }

  /** Offsets below this have been read (from `from` on). */
  get readUpTo(): bigint {
    if (this.failure) throw this.failure;
    return this.readTo;
  }

  /** Commit LSNs at offsets [from, readUpTo), in offset order. */
  *commitLsnsFrom(offset: bigint): Generator<bigint> {
    if (offset < this.from) throw new Error(`offset ${offset} is before the follower's start ${this.from}`);
    for (let o = offset; o < this.readUpTo; o++) yield* this.lsns.get(o) ?? [];
  }

  /** Drops what is below `offset`; the standby will never need it again. */
  forget(offset: bigint): void {
    for (const o of this.lsns.keys()) if (o < offset) this.lsns.delete(o);
  }

  async stop(): Promise<void> {
    await closeQuietly(this.consumer?.disconnect());
    const admin = this.kafka.admin();
    await admin
      .connect()
      .then(() => admin.deleteGroups([this.groupId]))
      .catch(() => undefined)
      .finally(() => closeQuietly(admin.disconnect()));
  }
}
