import { DiffrelayError } from "../errors/diffrelay-error.js";

/**
 * Why a message was refused. Consumers branch on this (e.g. an unsupported
 * version means "upgrade me", everything else means "corrupt or foreign
 * message"), so it is part of the API and never renamed.
 */
export type WireFormatErrorReason =
  /** The message does not start with "DR". */
  | "bad-magic"
  /** A format version this code does not know. */
  | "unsupported-version"
  /** A valid message of another kind (a schema message where data was expected, or vice versa). */
  | "unexpected-kind"
  /** The message ends in the middle of a field, or a count promises more than the bytes left. */
  | "truncated"
  /** A data-message frame tag that version 1 does not define. */
  | "unknown-frame"
  /** A field holds a value the spec does not allow (overlong varint, reserved flag bit, out of range, ...). */
  | "bad-value"
  /** Frames in an order the spec does not allow (a change before any TX_BEGIN, ...). */
  | "bad-frame-order"
  /** A relation index with no SCHEMA_REF declaring it in the same message. */
  | "bad-reference"
  /** Bytes left over after the last field of a schema message. */
  | "trailing-bytes"
  /** A schema message whose stored version is not the hash of its content. */
  | "schema-version-mismatch";

export class WireFormatError extends DiffrelayError {
  override readonly name = "WireFormatError";

  constructor(
    readonly reason: WireFormatErrorReason,
    /** Byte offset into the message where the offending field starts. */
    readonly offset: number,
    detail: string,
  ) {
    super("bad-frame", `${detail} (at byte ${offset})`);
  }
}
