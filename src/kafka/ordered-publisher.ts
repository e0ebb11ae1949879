import type { CompressionTypes, Producer } from "kafkajs";

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
  producer: Producer;
  topic: string;
  compression: CompressionTypes;
  /** Upper bound of one produce request; a single larger message still goes alone. */
  maxRequestBytes: number;
  /** Bytes queued or in flight before waitForCapacity() blocks the caller. */
  maxPendingBytes: number;
  /** Called in message order, after acks from all in-sync replicas. */
  onDurable: (receipts: T[], bytes: number, acked: ProduceAck) => void;
  /** Called when nothing is queued or in flight: the moment to seal the next message. */
  onIdle: () => void;
}

/**
 * Sends messages in order, one request in flight at a time, with acks=-1.
 * One request in flight means a retry can never overtake an earlier message;
 * while a request is out, new messages queue up and leave together in the next
 * one, which is what batches small transactions under load.
 *
 * A failed send fails the publisher for good: the caller restarts from the
 * slot's durable position, and the consumer drops duplicates by commit LSN.
 */
export class OrderedPublisher<T> {
  private queue: OutgoingMessage<T>[] = [];
  private pendingBytes = 0;
  private inFlight: Promise<void> | null = null;
  private failure: Error | null = null;
  private capacityWaiters: Array<() => void> = [];

  constructor(private readonly options: OrderedPublisherOptions<T>) {}

  get pending(): number {
    return this.pendingBytes;
  }

  get idle(): boolean {
    return this.queue.length === 0 && this.inFlight === null;
  }

  publish(message: OutgoingMessage<T>): void {
    this.throwIfFailed();
    this.queue.push(message);
    this.pendingBytes += sizeOf(message);
    this.pump();
  }

  publishReceiptOnly(receipt: T): void {
    this.publish({ value: null, receipt });
  }

  /** Resolves when there is room for more; this is how Kafka's pace reaches the replication socket. */
  async waitForCapacity(): Promise<void> {
    while (this.pendingBytes >= this.options.maxPendingBytes) {
      this.throwIfFailed();
      await new Promise<void>((resolve) => this.capacityWaiters.push(resolve));
    }
    this.throwIfFailed();
  }

  /** Resolves once everything published so far is durable. */
  async drain(): Promise<void> {
    while (!this.idle) {
      this.throwIfFailed();
      await this.inFlight;
    }
    this.throwIfFailed();
  }

  throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  private pump(): void {
    if (this.inFlight || this.failure || this.queue.length === 0) return;
    const batch = this.takeBatch();
    this.inFlight = this.send(batch).finally(() => {
      this.inFlight = null;
      this.pump();
      if (this.idle && !this.failure) this.options.onIdle();
    });
  }

  private takeBatch(): OutgoingMessage<T>[] {
    let bytes = 0;
    let count = 0;
    for (const message of this.queue) {
      if (count > 0 && bytes + sizeOf(message) > this.options.maxRequestBytes) break;
      bytes += sizeOf(message);
      count++;
    }
    return this.queue.splice(0, count);
  }

  private async send(batch: OutgoingMessage<T>[]): Promise<void> {
    const bytes = batch.reduce((sum, m) => sum + sizeOf(m), 0);
    const messages = batch.flatMap((m) => (m.value ? [{ value: m.value }] : []));
    let endOffset: bigint | null = null;
    try {
      if (messages.length > 0) {
        const written = await this.options.producer.send({
          topic: this.options.topic,
          acks: -1,
          compression: this.options.compression,
          messages,
        });
        const base = written[0]?.baseOffset;
        if (base !== undefined && base !== "-1") endOffset = BigInt(base) + BigInt(messages.length);
      }
    } catch (err) {
      this.failure = err instanceof Error ? err : new Error(String(err));
      this.wakeWaiters();
      return;
    }
    this.pendingBytes -= bytes;
    this.options.onDurable(
      batch.map((m) => m.receipt),
      bytes,
      { messages: messages.length, endOffset },
    );
    this.wakeWaiters();
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
