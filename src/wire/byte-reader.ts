import { isUtf8 } from "node:buffer";
import { TextBytes } from "../change/text-bytes.js";
import { WireFormatError } from "./wire-format-error.js";

/** Up to this many bytes a value is checked for ASCII byte by byte before UTF-8 in C++. */
const SHORT_TEXT = 64;

/**
 * Reads the wire format's primitives from one message. Every read is
 * bounds-checked and fails with a WireFormatError naming the field and the
 * byte offset where it starts; `what` names the field for that message.
 * Varints must be minimal and fit in 64 bits, so that every message has one
 * encoding and a corrupt byte cannot pass as a huge number.
 */
export class ByteReader {
  private pos: number;

  constructor(
    private readonly buf: Buffer,
    offset = 0,
  ) {
    this.pos = offset;
  }

  get offset(): number {
    return this.pos;
  }

  get remaining(): number {
    return this.buf.length - this.pos;
  }

  u8(what: string): number {
    const start = this.pos;
    if (start >= this.buf.length) throw truncated(what, start);
    this.pos = start + 1;
    return this.buf[start] as number;
  }

  u32(what: string): number {
    const start = this.pos;
    if (start + 4 > this.buf.length) throw truncated(what, start);
    this.pos = start + 4;
    return this.buf.readUInt32BE(start);
  }

  u64(what: string): bigint {
    const start = this.pos;
    if (start + 8 > this.buf.length) throw truncated(what, start);
    this.pos = start + 8;
    return this.buf.readBigUInt64BE(start);
  }

  /** A uvarint that must be at most `max` (itself at most Number.MAX_SAFE_INTEGER). */
  uvarint(what: string, max: number = Number.MAX_SAFE_INTEGER): number {
    const start = this.pos;
    const buf = this.buf;
    if (start < buf.length) {
      const first = buf[start] as number;
      if (first < 0x80) {
        if (first > max) throw outOfRange(what, start, first, max);
        this.pos = start + 1;
        return first;
      }
    }
    const value = this.uvarintAny(what);
    if (typeof value === "bigint" || value > max) throw outOfRange(what, start, value, max);
    return value;
  }

  /** A uvarint of up to 64 bits. */
  uvarintBig(what: string): bigint {
    const value = this.uvarintAny(what);
    return typeof value === "bigint" ? value : BigInt(value);
  }

  /** A zigzag varint that must be a safe integer. */
  svarint(what: string): number {
    const start = this.pos;
    const raw = this.uvarintAny(what);
    if (typeof raw === "number") return raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2;
    const value = raw & 1n ? -((raw + 1n) >> 1n) : raw >> 1n;
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new WireFormatError("bad-value", start, `${what} ${value} is not a safe integer`);
    }
    return Number(value);
  }

  /** A zigzag varint of up to 64 bits. */
  svarintBig(what: string): bigint {
    const raw = this.uvarintAny(what);
    if (typeof raw === "number") return BigInt(raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2);
    return raw & 1n ? -((raw + 1n) >> 1n) : raw >> 1n;
  }

  /** A zigzag varint as canonical decimal text, the integer form of a column value. */
  svarintDecimal(what: string): string {
    const raw = this.uvarintAny(what);
    if (typeof raw === "number") return String(raw % 2 === 0 ? raw / 2 : -(raw + 1) / 2);
    return String(raw & 1n ? -((raw + 1n) >> 1n) : raw >> 1n);
  }

  /**
   * A count of items that each take at least one byte. Refusing a count larger
   * than the bytes left keeps a corrupt count from driving a long loop or a
   * huge allocation.
   */
  count(what: string): number {
    const start = this.pos;
    const n = this.uvarint(what);
    if (n > this.remaining) {
      throw new WireFormatError("truncated", start, `${what} ${n} exceeds the ${this.remaining} bytes left`);
    }
    return n;
  }

  /** `length` raw bytes (the caller checked them against `remaining`), as a view into the message. */
  bytes(length: number, what: string): Buffer {
    const start = this.pos;
    if (start + length > this.buf.length) {
      throw new WireFormatError(
        "truncated",
        start,
        `${what} needs ${length} bytes, only ${this.remaining} left`,
      );
    }
    this.pos += length;
    return this.buf.subarray(start, this.pos);
  }

  /** The spec's `string`. */
  string(what: string): string {
    const start = this.pos;
    const length = this.uvarint(what);
    return this.utf8(length, what, start);
  }

  /** `length` bytes of UTF-8; `fieldStart` is where the field (with its length prefix) began. */
  utf8(length: number, what: string, fieldStart: number): string {
    const start = this.pos;
    const end = this.endOf(length, what, fieldStart);
    const text = this.buf.toString("utf8", start, end);
    // Decoding replaces invalid UTF-8 with U+FFFD, so only text containing it
    // can hide an error; the full check is kept for that rare case.
    if (text.includes("\uFFFD") && !isUtf8(this.buf.subarray(start, end))) {
      throw new WireFormatError("bad-value", fieldStart, `${what} is not valid UTF-8`);
    }
    this.pos = end;
    return text;
  }

  /**
   * `length` bytes of UTF-8 as a range of the message, checked but never
   * decoded: for values that go to the standby as the bytes they are.
   */
  utf8Bytes(length: number, what: string, fieldStart: number): TextBytes {
    const start = this.pos;
    const end = this.endOf(length, what, fieldStart);
    const buf = this.buf;
    // Most values are short ASCII: a JS loop settles them without a call into C++.
    let i = start;
    if (length <= SHORT_TEXT) while (i < end && (buf[i] as number) < 0x80) i++;
    if (i < end && !isUtf8(buf.subarray(start, end))) {
      throw new WireFormatError("bad-value", fieldStart, `${what} is not valid UTF-8`);
    }
    this.pos = end;
    return new TextBytes(buf, start, end);
  }

  /** Where a field of `length` bytes from here ends; it must end within the message. */
  private endOf(length: number, what: string, fieldStart: number): number {
    const end = this.pos + length;
    if (end > this.buf.length) {
      throw new WireFormatError(
        "truncated",
        fieldStart,
        `${what} needs ${length} bytes, only ${this.buf.length - this.pos} left`,
      );
    }
    return end;
  }

  /** A uvarint as a number when it is a safe integer, otherwise as a bigint. */
  private uvarintAny(what: string): number | bigint {
    const buf = this.buf;
    const start = this.pos;
    const end = buf.length;
    // Up to 7 bytes (49 bits) stay exact in a double; longer ones go through bigint.
    let result = 0;
    let scale = 1;
    for (let p = start; p < start + 7; p++) {
      if (p >= end) throw truncated(what, start);
      const byte = buf[p] as number;
      result += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (byte === 0 && p > start) throw overlong(what, start);
        this.pos = p + 1;
        return result;
      }
      scale *= 0x80;
    }
    let big = BigInt(result);
    let shift = 49n;
    for (let p = start + 7; ; p++) {
      if (p >= end) throw truncated(what, start);
      const byte = buf[p] as number;
      if (p === start + 9 && byte > 1) {
        throw new WireFormatError("bad-value", start, `${what} is a varint of more than 64 bits`);
      }
      big |= BigInt(byte & 0x7f) << shift;
      if (byte < 0x80) {
        if (byte === 0) throw overlong(what, start);
        this.pos = p + 1;
        return big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : big;
      }
      shift += 7n;
    }
  }
}

function truncated(what: string, offset: number): WireFormatError {
  return new WireFormatError("truncated", offset, `message ends inside ${what}`);
}

function overlong(what: string, offset: number): WireFormatError {
  return new WireFormatError("bad-value", offset, `${what} is an overlong varint`);
}

function outOfRange(what: string, offset: number, value: number | bigint, max: number): WireFormatError {
  return new WireFormatError("bad-value", offset, `${what} ${value} exceeds ${max}`);
}
