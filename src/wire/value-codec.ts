import type { ColumnValue, WritableValue } from "../change/change-model.js";
import type { TextBytes } from "../change/text-bytes.js";
import type { ByteReader } from "./byte-reader.js";
import type { ByteWriter } from "./byte-writer.js";
import type { WireFormatVersion } from "./envelope.js";

/**
 * Column values (docs/wire-format.md, `value`): NULL, a canonical integer as a
 * zigzag varint, a value joined from VALUE_PART frames (version 2), or text.
 * The integer form is only a shorter spelling: it is used only when the
 * consumer's decimal rendering gives back the identical text, so "-0", "007",
 * "+1" or "1.0" stay text.
 */

const HEADER_NULL = 0;
const HEADER_INTEGER = 1;
/** Version 2: the value is the next one joined from the VALUE_PART frames before its frame. */
const HEADER_JOINED = 2;
/** Text headers are the byte length plus this: version 1 had no joined header. */
const TEXT_BIAS = { 1: 2, 2: 3 } as const;

/** Stands for a value whose text arrived in VALUE_PART frames; the consumer puts the joined text there. */
export const JOINED_VALUE: unique symbol = Symbol("diffrelay.joinedValue");

const MIN_I64 = -(1n << 63n);
const MAX_I64 = (1n << 63n) - 1n;
/** Up to this many digits a decimal is exact in a double and its zigzag form stays below 2^53. */
const SMALL_DIGITS = 15;
/** int64's extremes have 19 digits. */
const MAX_DIGITS = 19;
const CHAR_MINUS = 45;
const CHAR_0 = 48;
const CHAR_1 = 49;
const CHAR_9 = 57;

/** Writes the header of a value that its VALUE_PART frames carry. */
export function writeJoinedValue(writer: ByteWriter): void {
  writer.uvarint(HEADER_JOINED);
}

/** Writes a value given as text or as its UTF-8 bytes: both give the same bytes on the wire. */
export function writeValue(writer: ByteWriter, value: WritableValue): void {
  if (value === null) {
    writer.uvarint(HEADER_NULL);
    return;
  }
  const text = typeof value === "string";
  const integer = text ? canonicalInteger(value) : canonicalIntegerOfBytes(value);
  if (integer === undefined) {
    if (text) writer.utf8WithLengthPrefix(value, TEXT_BIAS[2]);
    else writer.bytesWithLengthPrefix(value.buf, value.start, value.end, TEXT_BIAS[2]);
  } else if (typeof integer === "number") {
    writer.uvarint(HEADER_INTEGER);
    writer.svarint(integer);
  } else {
    writer.uvarint(HEADER_INTEGER);
    writer.svarintBig(integer);
  }
}

/** A value; a text value as a string, or with `as` "bytes" as its bytes in the message (never decoded). */
export function readValue(reader: ByteReader, version: WireFormatVersion): ColumnValue | typeof JOINED_VALUE;
export function readValue(
  reader: ByteReader,
  version: WireFormatVersion,
  as: "bytes",
): WritableValue | typeof JOINED_VALUE;
export function readValue(
  reader: ByteReader,
  version: WireFormatVersion,
  as?: "bytes",
): WritableValue | typeof JOINED_VALUE {
  const start = reader.offset;
  const header = reader.uvarint("value header");
  if (header === HEADER_NULL) return null;
  // An integer's decimal text is made, not read: a string either way.
  if (header === HEADER_INTEGER) return reader.svarintDecimal("integer value");
  if (header === HEADER_JOINED && version === 2) return JOINED_VALUE;
  const length = header - TEXT_BIAS[version];
  return as === "bytes"
    ? reader.utf8Bytes(length, "text value", start)
    : reader.utf8(length, "text value", start);
}

/**
 * The integer `text` spells when it is `0` or `-?[1-9][0-9]*` within int64:
 * a number when small enough to be exact, a bigint otherwise; undefined when
 * the text must travel as text.
 */
export function canonicalInteger(text: string): number | bigint | undefined {
  const length = text.length;
  const negative = length > 0 && text.charCodeAt(0) === CHAR_MINUS;
  const firstDigit = negative ? 1 : 0;
  const digits = length - firstDigit;
  if (digits === 0 || digits > MAX_DIGITS) return undefined;
  const first = text.charCodeAt(firstDigit);
  if (first === CHAR_0) return length === 1 ? 0 : undefined;
  if (first < CHAR_1 || first > CHAR_9) return undefined;
  let small = 0;
  for (let i = firstDigit; i < length; i++) {
    const c = text.charCodeAt(i);
    if (c < CHAR_0 || c > CHAR_9) return undefined;
    small = small * 10 + (c - CHAR_0);
  }
  if (digits <= SMALL_DIGITS) return negative ? -small : small;
  const big = BigInt(text);
  return big < MIN_I64 || big > MAX_I64 ? undefined : big;
}

/** canonicalInteger of the text whose UTF-8 bytes these are (a canonical integer is ASCII). */
export function canonicalIntegerOfBytes(value: TextBytes): number | bigint | undefined {
  const { buf, start, end } = value;
  const length = end - start;
  const negative = length > 0 && buf[start] === CHAR_MINUS;
  const firstDigit = start + (negative ? 1 : 0);
  const digits = end - firstDigit;
  if (digits === 0 || digits > MAX_DIGITS) return undefined;
  const first = buf[firstDigit] as number;
  if (first === CHAR_0) return length === 1 ? 0 : undefined;
  if (first < CHAR_1 || first > CHAR_9) return undefined;
  let small = 0;
  for (let i = firstDigit; i < end; i++) {
    const c = buf[i] as number;
    if (c < CHAR_0 || c > CHAR_9) return undefined;
    small = small * 10 + (c - CHAR_0);
  }
  if (digits <= SMALL_DIGITS) return negative ? -small : small;
  const big = BigInt(buf.toString("latin1", start, end));
  return big < MIN_I64 || big > MAX_I64 ? undefined : big;
}
