import { decodeFrame, type Frame } from "./frame-decoder.js";
import type { ApplyPosition } from "./position-store.js";

/** What the applier reads of a kafkajs batch (EachBatchPayload fits it). */
export interface TopicBatch {
  batch: { messages: { offset: string; value: Buffer | null }[] };
  isRunning(): boolean;
  isStale(): boolean;
  heartbeat(): Promise<void>;
}

export interface FrameSink {
  readonly current: ApplyPosition;
  handleFrame(frame: Frame, lastOfBatch: boolean): Promise<void>;
  commitCompleted(): Promise<void>;
}

/**
 * "applied": the whole batch went to the sink; "halted": it stopped early
 * (the session is ending or kafkajs took the partition away); "drained": the
 * message before `drainTo` was applied and everything complete committed.
 */
export type BatchOutcome = "applied" | "halted" | "drained";

/**
 * Hands one batch to the sink, message by message, from the sink's next
 * offset on (Kafka may redeliver what the standby already holds).
 */
export async function applyBatch(
  { batch, isRunning, isStale, heartbeat }: TopicBatch,
  sink: FrameSink,
  halted: () => boolean,
  drainTo?: bigint,
): Promise<BatchOutcome> {
  const messages = batch.messages;
  for (let i = 0; i < messages.length; i++) {
    if (!isRunning() || isStale() || halted()) return "halted";
    const message = messages[i] as (typeof messages)[number];
    const offset = BigInt(message.offset);
    if (offset < sink.current.nextOffset) continue;
    await sink.handleFrame(decodeFrame(message.value, offset, sink.current), i === messages.length - 1);
    // Long batches (a huge transaction) must not cost the group membership.
    await heartbeat();
    if (drainTo !== undefined && offset >= drainTo - 1n) {
      await sink.commitCompleted();
      return "drained";
    }
  }
  return "applied";
}
