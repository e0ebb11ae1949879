import { type DecodedDataMessage, decodeDataMessage } from "../../src/wire/data-message.js";
import { WireFormatError } from "../../src/wire/wire-format-error.js";
import { BadFrameError } from "./bad-frame-error.js";

/** One message of the data topic, as the grouper receives it. */
export type Frame =
  | { kind: "transactions"; offset: bigint; message: DecodedDataMessage }
  /** Kept with its bytes: a dead-letter topic receives them unchanged. */
  | { kind: "bad"; offset: bigint; value: Buffer | null; error: BadFrameError };

/** Where the message was read, and the source the standby follows (null: none yet, the first one seen is taken). */
export interface FrameOrigin {
  topic: string;
  partition: number;
  sourceId: bigint | null;
}

/** Decodes one message and checks that it comes from the source this standby follows. */
export function decodeFrame(value: Buffer | null, offset: bigint, origin: FrameOrigin): Frame {
  const bad = (problem: string, cause?: unknown): Frame => ({
    kind: "bad",
    offset,
    value,
    error: new BadFrameError(origin.topic, origin.partition, offset.toString(), problem, { cause }),
  });
  if (!value) return bad("empty message");
  let message: DecodedDataMessage;
  try {
    message = decodeDataMessage(value);
  } catch (err) {
    return bad(
      err instanceof WireFormatError ? err.message : `does not decode: ${(err as Error).message}`,
      err,
    );
  }
  const { sourceId } = message.envelope;
  if (origin.sourceId !== null && sourceId !== origin.sourceId) {
    return bad(
      `it comes from source ${hex(sourceId)}, but this standby follows source ${hex(origin.sourceId)}`,
    );
  }
  return { kind: "transactions", offset, message };
}

function hex(id: bigint): string {
  return id.toString(16).padStart(16, "0");
}
