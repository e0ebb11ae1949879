// Reads diffrelay's topics back for acceptance tests: a consumer with a throwaway group follows a topic from
// its first offset and keeps the raw records; data messages are decoded with the production codec.
import kafkajs, { type Consumer } from "kafkajs";
import type { TransactionChunk } from "../../src/change/change-model.js";
import { formatLsn, type Lsn } from "../../src/change/lsn.js";
import type { RelationSchema } from "../../src/change/relation-schema.js";
// Side effect: registers the snappy codec, which the capture uses by default.
import "../../src/kafka/kafka-client.js";
import { type DecodedDataMessage, decodeDataMessage } from "../../src/wire/data-message.js";
import { decodeSchemaMessage } from "../../src/wire/schema-message.js";
import { uniqueName } from "./services.js";

const { Kafka, logLevel } = kafkajs;

export interface RawRecord {
  offset: bigint;
  key: string | null;
  value: Buffer;
}

export interface DataRecord {
  offset: bigint;
  /** Size of the message value as the capture encoded it (before Kafka's batch compression). */
  bytes: number;
  message: DecodedDataMessage;
}

async function waitUntil(what: string, timeoutMs: number, probe: () => boolean | Promise<boolean>) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * Follows one single-partition topic from offset 0 for as long as it runs. Raw records are kept (not decoded
 * changes), so a topic holding a million rows stays cheap to hold; decode them with dataRecords().
 */
export class TopicFollower {
  readonly records: RawRecord[] = [];
  /** Highest commit LSN of a final chunk seen on a data topic. */
  private finalCommitLsn: Lsn = -1n;
  private failure: Error | null = null;
  private nextOffset = 0n;

  private constructor(
    private readonly kafka: kafkajs.Kafka,
    readonly topic: string,
    private readonly consumer: Consumer,
    private readonly kind: "data" | "schema",
  ) {}

  static async start(brokers: string[], topic: string, kind: "data" | "schema"): Promise<TopicFollower> {
    const kafka = new Kafka({
      clientId: "diffrelay-test-reader",
      brokers,
      logLevel: logLevel.NOTHING,
      retry: { retries: 10, initialRetryTime: 100 },
    });
    const consumer = kafka.consumer({
      groupId: uniqueName("test_reader"),
      maxWaitTimeInMs: 100,
      maxBytesPerPartition: 16 * 1024 * 1024,
      maxBytes: 64 * 1024 * 1024,
    });
    const follower = new TopicFollower(kafka, topic, consumer, kind);
    consumer.on(consumer.events.CRASH, (event) => {
      // kafkajs restarts the consumer after retriable errors (e.g. the group coordinator still loading).
      if (!event.payload.restart) follower.failure = event.payload.error;
    });
    await consumer.connect();
    await consumer.subscribe({ topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ message }) => follower.accept(message),
    });
    return follower;
  }

  private accept(message: kafkajs.KafkaMessage): void {
    const offset = BigInt(message.offset);
    if (offset < this.nextOffset) return; // a refetch after a rebalance
    this.nextOffset = offset + 1n;
    const value = message.value ?? Buffer.alloc(0);
    this.records.push({ offset, key: message.key ? message.key.toString("utf8") : null, value });
    if (this.kind === "data") {
      for (const chunk of decodeDataMessage(value).chunks) {
        const { commitLsn, finalChunk } = chunk.header;
        if (finalChunk && commitLsn > this.finalCommitLsn) this.finalCommitLsn = commitLsn;
      }
    }
  }

  /** Highest commit LSN of a final chunk read so far (-1 before any). */
  get lastFinalCommitLsn(): Lsn {
    return this.finalCommitLsn;
  }

  private check(): void {
    if (this.failure) throw new Error(`consumer of ${this.topic} crashed: ${this.failure.message}`);
  }

  /** Waits until the topic holds the final chunk of a transaction whose commit LSN is ≥ `lsn`. */
  async waitForCommitLsn(lsn: Lsn, timeoutMs = 60_000): Promise<void> {
    await waitUntil(
      `a transaction committed at or after ${formatLsn(lsn)} on ${this.topic}`,
      timeoutMs,
      () => {
        this.check();
        return this.finalCommitLsn >= lsn;
      },
    );
  }

  /** Waits until everything the topic holds now (its high watermark) has been read. */
  async waitForEnd(timeoutMs = 60_000): Promise<void> {
    const admin = this.kafka.admin();
    await admin.connect();
    let end: bigint;
    try {
      const offsets = await admin.fetchTopicOffsets(this.topic);
      end = offsets.reduce((max, o) => (BigInt(o.high) > max ? BigInt(o.high) : max), 0n);
    } finally {
      await admin.disconnect();
    }
    await waitUntil(`${this.topic} read up to offset ${end}`, timeoutMs, () => {
      this.check();
      return this.nextOffset >= end;
    });
  }

  /** Every data message read so far, decoded, in offset order. */
  dataRecords(): DataRecord[] {
    return this.records.map((r) => ({
      offset: r.offset,
      bytes: r.value.length,
      message: decodeDataMessage(r.value),
    }));
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect().catch(() => undefined);
  }
}

/** Reads a data topic from its beginning up to its current end. */
export async function readDataTopic(brokers: string[], topic: string): Promise<DataRecord[]> {
  const follower = await TopicFollower.start(brokers, topic, "data");
  try {
    await follower.waitForEnd();
    return follower.dataRecords();
  } finally {
    await follower.stop();
  }
}

/** The schema topic as "<relation id>:<version>" → definition; every message must decode and verify. */
export async function readSchemaTopic(
  brokers: string[],
  topic: string,
): Promise<Map<string, RelationSchema>> {
  const follower = await TopicFollower.start(brokers, topic, "schema");
  try {
    await follower.waitForEnd();
    const schemas = new Map<string, RelationSchema>();
    for (const record of follower.records) {
      const decoded = decodeSchemaMessage(record.value);
      const key = schemaMapKey(decoded.schema.relationId, decoded.version);
      if (record.key !== null && record.key !== `${decoded.schema.relationId}:${hex8(decoded.version)}`) {
        throw new Error(`schema message at offset ${record.offset} has key ${record.key}, content ${key}`);
      }
      schemas.set(key, decoded.schema);
    }
    return schemas;
  } finally {
    await follower.stop();
  }
}

const hex8 = (n: number) => n.toString(16).padStart(8, "0");

export function schemaMapKey(relationId: number, version: number): string {
  return `${relationId}:${version}`;
}

/** A whole source transaction reassembled from its chunks (which may span messages). */
export interface TopicTransaction {
  commitLsn: Lsn;
  xid: number;
  commitTimeMicros: bigint;
  /** Offsets of the messages its chunks came from. */
  offsets: bigint[];
  chunks: TransactionChunk[];
  changes: TransactionChunk["changes"];
}

/**
 * Reassembles transactions in topic order. An occurrence must run chunks 0, 1, …, n with only n final. A
 * chunk 0 that arrives while an occurrence is still open is a replay after a capture restart: the open
 * occurrence is set aside in `abandoned` (a killed capture may have published only its first chunks). A
 * trailing occurrence whose final chunk is not on the topic yet is returned as `incomplete`.
 */
export function transactionsOf(records: DataRecord[]): {
  transactions: TopicTransaction[];
  abandoned: TopicTransaction[];
  incomplete?: TopicTransaction;
} {
  const transactions: TopicTransaction[] = [];
  const abandoned: TopicTransaction[] = [];
  let current: TopicTransaction | undefined;
  for (const record of records) {
    for (const chunk of record.message.chunks) {
      const h = chunk.header;
      if (h.chunk === 0) {
        if (current) abandoned.push(current);
        current = {
          commitLsn: h.commitLsn,
          xid: h.xid,
          commitTimeMicros: h.commitTimeMicros,
          offsets: [],
          chunks: [],
          changes: [],
        };
      } else if (!current || current.commitLsn !== h.commitLsn || current.chunks.length !== h.chunk) {
        throw new Error(
          `chunk ${h.chunk} of ${formatLsn(h.commitLsn)} at offset ${record.offset} continues nothing`,
        );
      }
      current.chunks.push(chunk);
      if (current.offsets[current.offsets.length - 1] !== record.offset) current.offsets.push(record.offset);
      for (const change of chunk.changes) current.changes.push(change);
      if (h.finalChunk) {
        transactions.push(current);
        current = undefined;
      }
    }
  }
  return current ? { transactions, abandoned, incomplete: current } : { transactions, abandoned };
}

/** Deletes topics a test created; missing ones are fine. */
export async function deleteTopics(brokers: string[], topics: string[]): Promise<void> {
  const admin = new Kafka({
    clientId: "diffrelay-test-cleanup",
    brokers,
    logLevel: logLevel.NOTHING,
  }).admin();
  await admin.connect();
  try {
    await admin.deleteTopics({ topics }).catch(() => undefined);
  } finally {
    await admin.disconnect();
  }
}
