import type { CompressionTypes, Producer } from "kafkajs";
import { DiffrelayError } from "../errors/diffrelay-error.js";
import { produceErrorKind } from "../errors/error-policy.js";
import { COMPRESSION } from "./kafka-client.js";
import { RECORD_OVERHEAD_BYTES } from "./message-limits.js";

/**
 * Where sealed messages go. One send() is one produce request: it resolves
 * once every message in it is acknowledged by all in-sync replicas, in the
 * order given, and rejects otherwise (after the client's own retries).
 */
export interface MessageSink {
  /** Names the destination in errors: the topic. */
  readonly name: string;
  /** Resolves with the partition's end offset right after these messages, or null when Kafka did not say. */
  send(values: Buffer[]): Promise<bigint | null>;
}

/**
 * Below this many bytes of values a produce request goes uncompressed: a gzip
 * member's header and trailer (18 bytes) and its block take back most of what a
 * few small transactions' frames would save, and each request would cost a zlib
 * stream and a thread-pool hop on both the capture and every applier, on the
 * commit-to-standby path (and on every zero-loss commit).
 */
export const MIN_COMPRESSED_REQUEST_BYTES = 256;

/** A single-partition topic as a sink: acks from all in-sync replicas, the topic's compression. */
export function kafkaTopicSink(
  producer: Producer,
  topic: string,
  compression: CompressionTypes,
): MessageSink {
  return {
    name: `topic "${topic}"`,
    send: async (values) => {
      const written = await producer.send({
        topic,
        acks: -1,
        compression:
          values.reduce((n, v) => n + v.length, 0) < MIN_COMPRESSED_REQUEST_BYTES
            ? COMPRESSION.none
            : compression,
        messages: values.map((value) => ({ value })),
      });
      const base = written[0]?.baseOffset;
      return base !== undefined && base !== "-1" ? BigInt(base) + BigInt(values.length) : null;
    },
  };
}

/** A sealed Kafka message and what its durability confirms. */
export interface OutgoingMessage<T> {
  /** null: nothing to send, but the receipt is still handed back in order. */
  value: Buffer | null;
  /** Handed back through onDurable once Kafka has acknowledged this message. */
  receipt: T;
}

/** What Kafka acknowledged for one produce request. */
export interface ProduceAck {
  /** Messages written (receipt-only entries send none). */
  messages: number;
  /** The partition's end offset right after them, when Kafka reported the batch's base offset. */
  endOffset: bigint | null;
}

export interface OrderedPublisherOptions<T> {
  sink: MessageSink;
  /** Upper bound of one produce request, RECORD_OVERHEAD_BYTES per message included; a single larger message still goes alone. */
  maxRequestBytes: number;
  /** Bytes queued or in flight before waitForCapacity() blocks the caller. */
  maxPendingBytes: number;
  /** Called in message order, after acks from all in-sync replicas. */
  onDurable: (receipts: T[], bytes: number, acked: ProduceAck) => void;
  /** Called when nothing is queued or in flight: the moment to seal the next message. */
  onIdle: () => void;
  /**
   * Called once, as soon as a send fails, with the receipts that will now never
   * be handed back (the failed request's and everything queued behind it).
   */
  onFailure: (error: PublishError, unacknowledged: T[]) => void;
}

/**
 * A produce request that failed after the client's retries; the publisher that
 * sent it has stopped. Nothing it carried was confirmed. Usually transient: a
 * new session from the slot sends it again; a refusal that sending again
 * cannot change stops the capture (produceErrorKind).
 */
export class PublishError extends DiffrelayError {
  override name = "PublishError";

  constructor(message: string, options?: { cause?: unknown }) {
    super(produceErrorKind(options?.cause), message, options);
  }
}

/**
 * Sends messages in order, one request in flight at a time, with acks=-1.
 * One request in flight means a retry can never overtake an earlier message;
 * while a request is out, new messages queue up and leave together in the next
 * one, which is what batches small transactions under load.
 *
 * A failed send fails the publisher for good, and says so at once through
 * onFailure rather than waiting for the next publish: the caller restarts from
 * the slot's durable position, and the consumer drops duplicates by commit LSN.
 * A failed publisher is never idle, so nothing that asks "is everything
 * received durable?" can take its silence for a yes.
 */
export class OrderedPublisher<T> {
  private queue: OutgoingMessage<T>[] = [];
  private pendingBytes = 0;
  private inFlight: Promise<void> | null = null;
  private failure: PublishError | null = null;
  private capacityWaiters: Array<() => void> = [];
  private closed = false;

  constructor(private readonly options: OrderedPublisherOptions<T>) {}

  /** Nothing queued, nothing in flight, and no failure: everything published has been acknowledged. */
  get idle(): boolean {
    return !this.closed && this.failure === null && this.queue.length === 0 && this.inFlight === null;
  }

  /**
   * Ends this publisher: what is queued is never sent (it was not acknowledged,
   * so the slot still holds it), and this resolves only once the request in
   * flight has settled. The next session's producer then cannot publish while
   * a request of this one may still be appended, so two sessions never interleave.
   */
  async close(): Promise<void> {
    this.closed = true;
    this.queue = [];
    this.wakeWaiters();
    await this.inFlight;
  }

  publish(message: OutgoingMessage<T>): void {
    if (this.closed) throw new Error(`publisher for ${this.options.sink.name} is closed`);
    this.throwIfFailed();
    this.queue.push(message);
    this.pendingBytes += sizeOf(message);
    this.pump();
  }

  publishReceiptOnly(receipt: T): void {
    this.publish({ value: null, receipt });
  }

  /**
   * Undefined when there is room for more, else a promise that resolves once
   * there is: this is how Kafka's pace reaches the replication socket, and the
   * synchronous answer keeps the common case free of promises. A failed
   * publisher throws (or rejects) with its failure.
   */
  waitForCapacity(): Promise<void> | undefined {
    this.throwIfFailed();
    if (this.pendingBytes < this.options.maxPendingBytes || this.closed) return undefined;
    return this.capacity();
  }

  private async capacity(): Promise<void> {
    while (this.pendingBytes >= this.options.maxPendingBytes && !this.closed) {
      this.throwIfFailed();
      await new Promise<void>((resolve) => this.capacityWaiters.push(resolve));
    }
    this.throwIfFailed();
  }

  throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  private pump(): void {
    if (this.inFlight || this.failure || this.closed || this.queue.length === 0) return;
    const batch = this.takeBatch();
    this.inFlight = this.send(batch).finally(() => {
      this.inFlight = null;
      this.pump();
      if (this.idle) this.options.onIdle();
    });
  }

  private takeBatch(): OutgoingMessage<T>[] {
    let bytes = 0;
    let count = 0;
    for (const message of this.queue) {
      const framed = sizeOf(message) + RECORD_OVERHEAD_BYTES;
      if (count > 0 && bytes + framed > this.options.maxRequestBytes) break;
      bytes += framed;
      count++;
    }
    return this.queue.splice(0, count);
  }

  private async send(batch: OutgoingMessage<T>[]): Promise<void> {
    const bytes = batch.reduce((sum, m) => sum + sizeOf(m), 0);
    const values = batch.flatMap((m) => (m.value ? [m.value] : []));
    let endOffset: bigint | null = null;
    try {
      if (values.length > 0) endOffset = await this.options.sink.send(values);
    } catch (err) {
      this.fail(err, batch, values.length, bytes);
      return;
    }
    this.pendingBytes -= bytes;
    this.options.onDurable(
      batch.map((m) => m.receipt),
      bytes,
      { messages: values.length, endOffset },
    );
    this.wakeWaiters();
  }

  private fail(cause: unknown, batch: OutgoingMessage<T>[], messages: number, bytes: number): void {
    const reason = cause instanceof Error ? cause.message : String(cause);
    this.failure = new PublishError(
      `Kafka did not acknowledge a produce request to ${this.options.sink.name} ` +
        `(${messages} messages, ${bytes} bytes) after the client's retries: ${reason}`,
      { cause },
    );
    const unacknowledged = [...batch, ...this.queue].map((m) => m.receipt);
    this.queue = [];
    this.wakeWaiters();
    this.options.onFailure(this.failure, unacknowledged);
  }

  private wakeWaiters(): void {
    const waiters = this.capacityWaiters;
    this.capacityWaiters = [];
    for (const wake of waiters) wake();
  }
}

function sizeOf(message: OutgoingMessage<unknown>): number {
  return message.value?.length ?? 0;
}
