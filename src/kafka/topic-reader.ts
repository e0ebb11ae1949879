import { randomBytes } from "node:crypto";
import type { Consumer, Kafka } from "kafkajs";
import { closeQuietly } from "../errors/close-quietly.js";
import { partitionOffsets } from "./topic-admin.js";

/** One record of the topic's partition 0, as Kafka holds it. */
export interface TopicRecord {
  offset: bigint;
  key: Buffer | null;
  /** null for a tombstone. */
  value: Buffer | null;
}

/** Where a reader is after a batch. */
export interface ReadProgress {
  /** Every record below this offset (from the reader's start on) has been handed to `onRecords`. */
  readTo: bigint;
  /** `readTo` has reached `endAtStart`: see TopicReader.caughtUp. */
  caughtUp: boolean;
}

export interface TopicReaderOptions {
  kafka: Kafka;
  /** A topic with one partition (every diffrelay topic has one). */
  topic: string;
  /** Names the throw-away consumer group (`diffrelay-<purpose>-<pid>-<random>`), so a group listing says who reads. */
  purpose: string;
  /** First offset to read; unset or below the topic's start: the topic's start (what retention still holds). */
  from?: bigint;
  /**
   * Called with each batch of records, in offset order, one call at a time. A throw stops the reader:
   * nothing after that batch is delivered and the error becomes the reader's failure.
   */
  onRecords(records: readonly TopicRecord[], progress: ReadProgress): void | Promise<void>;
  /**
   * Called once when the reader is caught up, after the `onRecords` of the batch that got it there and before
   * the next one (awaited); when the topic held nothing to read, from startTopicReader before it returns. A
   * throw fails the reader as one in `onRecords` does (from startTopicReader: it rejects).
   */
  onCaughtUp?(): void | Promise<void>;
  /** Called once when the reader cannot read on (onRecords threw, or the consumer crashed for good). */
  onFailure?(error: Error): void;
}

/** A running reader: see startTopicReader. */
export interface TopicReader {
  readonly topic: string;
  /** The offset the topic's next record would have got when the reader started (its high watermark then). */
  readonly endAtStart: bigint;
  /** Every record below this offset (from the reader's start on) has been handed to `onRecords`. */
  readonly readTo: bigint;
  /**
   * True once every record that existed when the reader started has been handed to `onRecords` (and
   * `onRecords` returned). A reader that is caught up has seen all the topic held at its start: when it then
   * holds nothing, the topic held nothing. Before that, the absence of a record means nothing.
   */
  readonly caughtUp: boolean;
  /** Why the reader stopped reading, or null. */
  readonly failure: Error | null;
  /** Resolves once caught up; rejects with the reader's failure, or after `timeoutMs` with an error naming the topic and offsets. */
  waitCaughtUp(timeoutMs: number): Promise<void>;
  /** Ends the reader and deletes its consumer group; nothing is delivered after it returns. */
  stop(): Promise<void>;
}

/**
 * Reads a single-partition topic from its start (or `from`), and goes on reading what is appended, with a
 * throw-away consumer group that never commits and is deleted by stop(). "Caught up" is measured against the
 * high watermark fetched before the consumer subscribes, so it is never reported before the reader has read
 * everything that was there when it started. The last record below the high watermark is always held (Kafka
 * never cleans a log's active segment and diffrelay writes no transaction markers), so that offset is reached.
 *
 * A reader whose view must never be that of a topic read halfway (the cluster store, which bootstraps a
 * cluster only when its state topic holds no state) keeps what `onRecords` hands it and acts on it from
 * `onCaughtUp` on, then after each batch (`progress.caughtUp`), for an empty topic too:
 *
 *     const records = new Map<string, Decoded>();
 *     let caughtUp = false;
 *     const reader = await startTopicReader({
 *       kafka, topic, purpose: "cluster",
 *       onRecords: async (batch) => {
 *         for (const r of batch) records.set(keyOf(r), decode(r));
 *         if (caughtUp) await onChange(viewOf(records));
 *       },
 *       onCaughtUp: async () => {
 *         caughtUp = true;
 *         await onChange(viewOf(records));
 *       },
 *     });
 */
export async function startTopicReader(options: TopicReaderOptions): Promise<TopicReader> {
  const { kafka, topic } = options;
  const admin = kafka.admin();
  await admin.connect();
  const offsets = await partitionOffsets(admin, topic).finally(() => closeQuietly(admin.disconnect()));
  const start = options.from === undefined || options.from < offsets.low ? offsets.low : options.from;
  const reader = new RunningTopicReader(options, offsets.high, start);
  try {
    await reader.run();
  } catch (err) {
    await reader.stop();
    throw err;
  }
  return reader;
}

class RunningTopicReader implements TopicReader {
  readonly topic: string;
  readTo: bigint;
  failure: Error | null = null;
  private readonly groupId: string;
  private consumer: Consumer | null = null;
  private stopped = false;
  private readonly waiters = new Set<() => void>();

  constructor(
    private readonly options: TopicReaderOptions,
    readonly endAtStart: bigint,
    private readonly start: bigint,
  ) {
    this.topic = options.topic;
    this.readTo = start;
    this.groupId = `diffrelay-${options.purpose}-${process.pid}-${randomBytes(4).toString("hex")}`;
  }

  get caughtUp(): boolean {
    return this.readTo >= this.endAtStart;
  }

  async run(): Promise<void> {
    const consumer = this.options.kafka.consumer({
      groupId: this.groupId,
      maxWaitTimeInMs: 100,
      allowAutoTopicCreation: false,
    });
    this.consumer = consumer;
    consumer.on(consumer.events.CRASH, (event) => {
      // kafkajs restarts the consumer itself after a retriable error (a coordinator still loading, ...).
      if (!event.payload.restart) {
        this.fail(new Error(`reader of topic ${this.topic} stopped: ${event.payload.error.message}`));
      }
    });
    if (this.caughtUp) await this.options.onCaughtUp?.();
    await consumer.connect();
    await consumer.subscribe({ topic: this.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        if (this.stopped || this.failure) return;
        const records: TopicRecord[] = [];
        for (const message of batch.messages) {
          const offset = BigInt(message.offset);
          // A refetch after a rebalance, or what precedes `from`.
          if (offset < this.readTo) continue;
          records.push({ offset, key: message.key, value: message.value });
        }
        const last = records[records.length - 1];
        if (!last) return;
        const wasCaughtUp = this.caughtUp;
        try {
          await this.options.onRecords(records, {
            readTo: last.offset + 1n,
            caughtUp: last.offset + 1n >= this.endAtStart,
          });
          this.readTo = last.offset + 1n;
          if (!wasCaughtUp && this.caughtUp) await this.options.onCaughtUp?.();
        } catch (err) {
          this.fail(err instanceof Error ? err : new Error(String(err)));
          return;
        }
        this.wake();
      },
    });
    // seek() takes effect once run() has started; fromBeginning already starts at the topic's start.
    if (this.start > 0n) consumer.seek({ topic: this.topic, partition: 0, offset: this.start.toString() });
  }

  waitCaughtUp(timeoutMs: number): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const check = (): boolean => {
        if (this.failure) reject(this.failure);
        else if (this.caughtUp) resolve();
        else if (this.stopped)
          reject(new Error(`reader of topic ${this.topic} was stopped before it caught up`));
        else return false;
        return true;
      };
      if (check()) return;
      const timer = setTimeout(() => {
        this.waiters.delete(waiter);
        reject(
          new Error(
            `topic ${this.topic} not read to offset ${this.endAtStart} (its end when the reader started) within ${timeoutMs} ms: read up to ${this.readTo}; is Kafka reachable?`,
          ),
        );
      }, timeoutMs);
      const waiter = () => {
        if (!check()) return;
        clearTimeout(timer);
        this.waiters.delete(waiter);
      };
      this.waiters.add(waiter);
    });
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.wake();
    // A reader reads nothing that must be kept: a failed disconnect or group delete leaves only an
    // empty group, which the broker expires by itself.
    await closeQuietly(this.consumer?.disconnect());
    const admin = this.options.kafka.admin();
    await admin
      .connect()
      .then(() => admin.deleteGroups([this.groupId]))
      .catch(() => undefined)
      .finally(() => closeQuietly(admin.disconnect()));
  }

  private fail(error: Error): void {
    if (this.failure) return;
    this.failure = error;
    this.options.onFailure?.(error);
    this.wake();
  }

  private wake(): void {
    for (const waiter of [...this.waiters]) waiter();
  }
}
