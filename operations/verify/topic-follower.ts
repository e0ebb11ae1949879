import type { Kafka } from "kafkajs";
import { startTopicReader, type TopicReader } from "../../src/kafka/topic-reader.js";
import { decodeDataMessage } from "../../src/wire/data-message.js";

/**
 * Reads the data topic from a starting offset and remembers, per offset, the
 * commit LSNs of the transactions (chunks) its message holds: all that verify
 * needs to know which transaction the standby applies next.
 */
export class TopicFollower {
  private readonly lsns = new Map<bigint, bigint[]>();
  private reader: TopicReader | null = null;

  constructor(
    private readonly kafka: Kafka,
    private readonly topic: string,
    readonly from: bigint,
  ) {}

  async start(): Promise<void> {
    this.reader = await startTopicReader({
      kafka: this.kafka,
      topic: this.topic,
      purpose: "verify",
      from: this.from,
      onRecords: (records) => {
        for (const record of records) {
          const decoded = record.value ? decodeDataMessage(record.value) : { chunks: [] };
          this.lsns.set(
            record.offset,
            decoded.chunks.map((c) => c.header.commitLsn),
          );
        }
      },
    });
  }

  /** Offsets below this have been read (from `from` on). */
  get readUpTo(): bigint {
    if (!this.reader) return this.from;
    if (this.reader.failure) throw this.reader.failure;
    return this.reader.readTo;
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
    await this.reader?.stop();
  }
}
