import { checkSource, type Frame, readFrame } from "./frame-decoder.js";
import { TopicGapError } from "./position-errors.js";
import type { ApplyPosition } from "./position-store.js";

/** What the applier reads of a kafkajs batch (EachBatchPayload fits it). */
export interface TopicBatch {
  batch: { highWatermark: string; messages: { offset: string; value: Buffer | null }[] };
  isRunning(): boolean;
  isStale(): boolean;
  heartbeat(): Promise<void>;
}

export interface FrameSink {
  readonly current: ApplyPosition;
  handleFrame(frame: Frame, lastOfBatch: boolean): Promise<void>;
  commitCompleted(): Promise<void>;
}

/** How often a frame that takes long to apply renews the group membership meanwhile. */
const HEARTBEAT_WHILE_APPLYING_MS = 1000;

/**
 * The offset a consuming session must be handed next. The data topic is
 * neither compacted nor written transactionally, so its offsets are
 * contiguous: a later offset than this one means the messages between are
 * gone (retention, deleted records, kafkajs resetting an out-of-range fetch to
 * the earliest offset), and applying on would skip transactions.
 */
export class TopicCursor {
  constructor(
    readonly topic: string,
    readonly partition: number,
    public next: bigint,
  ) {}

  /** Whether to take the message at `offset`; false for one already handed on (a redelivery). */
  take(offset: bigint): boolean {
    if (offset < this.next) return false;
    if (offset > this.next) throw new TopicGapError(this.topic, this.partition, this.next, offset);
    this.next = offset + 1n;
    return true;
  }

  /** A topic that ends below the offset needed next was recreated (or truncated) under the applier. */
  checkEnd(highWatermark: bigint, firstOffset: bigint | null): void {
    if (highWatermark >= this.next) return;
    throw new TopicGapError(
      this.topic,
      this.partition,
      this.next,
      firstOffset ?? highWatermark,
      highWatermark,
    );
  }
}

/**
 * "applied": the whole batch went to the sink; "halted": it stopped early
 * (the session is ending or kafkajs took the partition away); "drained": the
 * message before `drainTo` was applied and everything complete committed.
 */
export type BatchOutcome = "applied" | "halted" | "drained";

/**
 * Hands one batch to the sink, message by message, from the cursor on (Kafka
 * may redeliver what the standby already holds); a message past the cursor
 * stops the session with a TopicGapError before anything after it is applied.
 */
export async function applyBatch(
  { batch, isRunning, isStale, heartbeat }: TopicBatch,
  sink: FrameSink,
  cursor: TopicCursor,
  halted: () => boolean,
  drainTo?: bigint,
): Promise<BatchOutcome> {
  const messages = batch.messages;
  cursor.checkEnd(BigInt(batch.highWatermark), messages[0] ? BigInt(messages[0].offset) : null);
  const ahead = new ReadAhead((i) => {
    const message = messages[i];
    return message && readFrame(message.value, BigInt(message.offset), cursor);
  });
  for (let i = 0; i < messages.length; i++) {
    if (!isRunning() || isStale() || halted()) return "halted";
    const message = messages[i] as (typeof messages)[number];
    const offset = BigInt(message.offset);
    const decoded = ahead.take(i) as Frame;
    if (!cursor.take(offset)) continue;
    const frame = checkSource(decoded, message.value, sink.current);
    const applying = heartbeatingWhile(heartbeat, () => sink.handleFrame(frame, i === messages.length - 1));
    ahead.schedule(i + 1);
    await applying;
    // Long batches (a huge transaction) must not cost the group membership.
    await heartbeat();
    if (drainTo !== undefined && offset >= drainTo - 1n) {
      await sink.commitCompleted();
      return "drained";
    }
  }
  return "applied";
}

/**
 * Decodes the next message while the standby works on the one before: decoding
 * is the applier's own largest cost, and the two then overlap. The decode runs
 * on the event loop's next turn, once the apply under way has sent its
 * statements and waits on the standby; take() decodes at once if that turn has
 * not come yet.
 */
class ReadAhead {
  private index = -1;
  private frame: Frame | undefined;
  private immediate: NodeJS.Immediate | null = null;

  constructor(private readonly read: (index: number) => Frame | undefined) {}

  schedule(index: number): void {
    this.cancel();
    this.index = index;
    this.immediate = setImmediate(() => {
      this.immediate = null;
      this.frame = this.read(index);
    });
  }

  take(index: number): Frame | undefined {
    const ready = index === this.index && this.immediate === null ? this.frame : undefined;
    this.cancel();
    return ready ?? this.read(index);
  }

  private cancel(): void {
    if (this.immediate) clearImmediate(this.immediate);
    this.immediate = null;
    this.frame = undefined;
    this.index = -1;
  }
}

/**
 * Runs `work` while renewing the group membership: one frame (a chunk of a
 * large transaction on a slow standby) may take longer than the session
 * timeout, and an applier evicted mid-chunk would replay it from the
 * transaction's start, evicted again each time. Failed renewals are left to
 * the heartbeat after the frame, which ends the session if membership is lost.
 */
async function heartbeatingWhile(heartbeat: () => Promise<void>, work: () => Promise<void>): Promise<void> {
  const timer = setInterval(() => {
    heartbeat().catch(() => undefined);
  }, HEARTBEAT_WHILE_APPLYING_MS);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
}
