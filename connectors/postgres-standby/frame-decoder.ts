import type { ApplyChange } from "../../src/change/change-model.js";
import { type DecodedDataMessage, decodeDataMessage } from "../../src/wire/data-message.js";
import { WireFormatError } from "../../src/wire/wire-format-error.js";
import { BadFrameError } from "./bad-frame-error.js";

/** One message of the data topic, as the grouper receives it. */
export type Frame =
  | { kind: "transactions"; offset: bigint; message: DecodedDataMessage<ApplyChange> }
  /** Kept with its bytes: a dead-letter topic receives them unchanged. */
  | { kind: "bad"; offset: bigint; value: Buffer | null; error: BadFrameError };

/** Where the message was read, and the source the standby follows (null: none yet, the first one seen is taken). */
export interface FrameOrigin {
  topic: string;
  partition: number;
  sourceId: bigint | null;
}

/**
 * Decodes one message. Apart from the check of its source (checkSource), so
 * that the applier can decode a message ahead while the standby still works on
 * the one before, whose position that check needs.
 */
export function readFrame(
  value: Buffer | null,
  offset: bigint,
  where: { topic: string; partition: number },
): Frame {
  if (!value) return badFrame(value, offset, where, "empty message");
  try {
    // An insert's values stay the message's bytes until COPY: kafkajs gives each record its own view
    // of a buffer it never reuses.
    return { kind: "transactions", offset, message: decodeDataMessage(value, { insertValues: "bytes" }) };
  } catch (err) {
    const problem =
      err instanceof WireFormatError ? err.message : `does not decode: ${(err as Error).message}`;
    return badFrame(value, offset, where, problem, err);
  }
}

/**
 * The frame, or a bad one (with the message's bytes, `value`) when it comes
 * from another source than the one this standby follows.
 */
export function checkSource(frame: Frame, value: Buffer | null, origin: FrameOrigin): Frame {
  if (frame.kind === "bad" || origin.sourceId === null) return frame;
  const { sourceId } = frame.message.envelope;
  if (sourceId === origin.sourceId) return frame;
  return badFrame(
    value,
    frame.offset,
    origin,
    `it comes from source ${hex(sourceId)}, but this standby follows source ${hex(origin.sourceId)}`,
  );
}

function badFrame(
  value: Buffer | null,
  offset: bigint,
  where: { topic: string; partition: number },
  problem: string,
  cause?: unknown,
): Frame {
  return {
    kind: "bad",
    offset,
    value,
    error: new BadFrameError(where.topic, where.partition, offset.toString(), problem, { cause }),
  };
}

function hex(id: bigint): string {
  return id.toString(16).padStart(16, "0");
}
