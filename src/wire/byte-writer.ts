/**
 * A growable big-endian buffer writer for the wire format's primitives
 * (docs/wire-format.md, "Primitive encodings"). The capture encodes every row
 * through it, so it writes in place into one buffer that doubles when full and
 * is reused across messages; only toBuffer() copies.
 */

const MAX_U64 = 0xffff_ffff_ffff_ffffn;
const MIN_I64 = -(1n << 63n);
const MAX_I64 = (1n << 63n) - 1n;
/** From this magnitude on a zigzagged number may exceed 2^53 - 1, so it goes through bigint. */
const MAX_SMALL_SVARINT = 2 ** 52;
/** Strings and bytes up to this length are copied by a JS loop: cheaper than a call into C++ when short. */
const SHORT_STRING = 32;

export class ByteWriter {
  private buf: Buffer;
  private pos = 0;

  constructor(initialCapacity = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(Math.max(16, initialCapacity));
  }

  /** Bytes written so far. */
  get length(): number {
    return this.pos;
  }

  /** Forgets everything written, keeping the allocated capacity. */
  reset(): void {
    this.pos = 0;
  }

  /** Drops everything written after the first `length` bytes. */
  truncate(length: number): void {
    if (!(length >= 0 && length <= this.pos))
      throw new RangeError(`truncate to ${length} outside 0..${this.pos}`);
    this.pos = length;
  }

  /** A copy of the bytes written, sized exactly, safe to keep after the writer is reused. */
  toBuffer(): Buffer {
    const out = Buffer.allocUnsafe(this.pos);
    this.buf.copy(out, 0, 0, this.pos);
    return out;
  }

  u8(value: number): void {
    if (!(Number.isInteger(value) && value >= 0 && value <= 0xff)) throw new RangeError(`not a u8: ${value}`);
    this.ensure(1);
    this.buf[this.pos++] = value;
  }

  /** Overwrites one byte already written, for flags only known after later fields. */
  patchU8(offset: number, value: number): void {
    if (!(offset >= 0 && offset < this.pos))
      throw new RangeError(`patch offset ${offset} outside 0..${this.pos}`);
    if (!(Number.isInteger(value) && value >= 0 && value <= 0xff)) throw new RangeError(`not a u8: ${value}`);
    this.buf[offset] = value;
  }

  u32(value: number): void {
    if (!(Number.isInteger(value) && value >= 0 && value <= 0xffff_ffff)) {
      throw new RangeError(`not a u32: ${value}`);
    }
    this.ensure(4);
    this.pos = this.buf.writeUInt32BE(value, this.pos);
  }

  u64(value: bigint): void {
    if (value < 0n || value > MAX_U64) throw new RangeError(`not a u64: ${value}`);
    this.ensure(8);
    this.pos = this.buf.writeBigUInt64BE(value, this.pos);
  }

  /** An unsigned LEB128 of a non-negative safe integer. */
  uvarint(value: number): void {
    if (value >= 0 && value < 0x80 && (value | 0) === value) {
      this.ensure(1);
      this.buf[this.pos++] = value;
      return;
    }
    if (!(Number.isSafeInteger(value) && value >= 0)) throw new RangeError(`not a uvarint: ${value}`);
    this.ensure(8);
    this.pos = writeUvarintNumber(this.buf, this.pos, value);
  }

  /** An unsigned LEB128 of any u64. */
  uvarintBig(value: bigint): void {
    if (value < 0n || value > MAX_U64) throw new RangeError(`not a u64: ${value}`);
    if (value <= BigInt(Number.MAX_SAFE_INTEGER)) {
      this.uvarint(Number(value));
      return;
    }
    this.ensure(10);
    const buf = this.buf;
    let p = this.pos;
    let v = value;
    while (v >= 0x80n) {
      buf[p++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    buf[p++] = Number(v);
    this.pos = p;
  }

  /** A zigzag varint of a safe integer. */
  svarint(value: number): void {
    if (!Number.isSafeInteger(value)) throw new RangeError(`not a safe integer: ${value}`);
    if (value >= MAX_SMALL_SVARINT || value < -MAX_SMALL_SVARINT) {
      this.svarintBig(BigInt(value));
      return;
    }
    this.uvarint(value >= 0 ? value * 2 : -value * 2 - 1);
  }

  /** A zigzag varint of any int64. */
  svarintBig(value: bigint): void {
    if (value < MIN_I64 || value > MAX_I64) throw new RangeError(`not an int64: ${value}`);
    this.uvarintBig(value >= 0n ? value << 1n : (-value << 1n) - 1n);
  }

  /** The spec's `string`: uvarint byte length, then UTF-8. */
  string(value: string): void {
    this.utf8WithLengthPrefix(value, 0);
  }

  /**
   * UTF-8 of `value` preceded by a uvarint of its byte length plus `bias`
   * (2 for a text `value` header). Avoids measuring the string first whenever
   * the prefix's size is already known from the UTF-16 length alone, which
   * holds for nearly every column value.
   */
  utf8WithLengthPrefix(value: string, bias: number): void {
    const chars = value.length;
    const maxBytes = chars * 3;
    const minPrefix = uvarintSize(chars + bias);
    if (minPrefix === uvarintSize(maxBytes + bias)) {
      this.ensure(minPrefix + maxBytes);
      const start = this.pos + minPrefix;
      const written = this.writeUtf8(value, start);
      // UTF-8 takes between 1 and 3 bytes per UTF-16 unit, so the real length
      // lies between the two bounds and its prefix has exactly minPrefix bytes.
      writeUvarintNumber(this.buf, this.pos, written + bias);
      this.pos = start + written;
      return;
    }
    const bytes = Buffer.byteLength(value, "utf8");
    this.uvarint(bytes + bias);
    this.ensure(bytes);
    this.pos += this.buf.write(value, this.pos, bytes, "utf8");
  }

  /**
   * The same as utf8WithLengthPrefix for a value given as its UTF-8 bytes
   * (source[start, end)): copied as they are, without a string in between.
   */
  bytesWithLengthPrefix(source: Buffer, start: number, end: number, bias: number): void {
    const length = end - start;
    this.uvarint(length + bias);
    this.ensure(length);
    const buf = this.buf;
    const pos = this.pos;
    if (length <= SHORT_STRING) {
      // A JS loop beats a call into C++ for the short values most columns hold.
      for (let i = 0; i < length; i++) buf[pos + i] = source[start + i] as number;
    } else {
      source.copy(buf, pos, start, end);
    }
    this.pos = pos + length;
  }

  bytes(value: Uint8Array): void {
    this.ensure(value.length);
    this.buf.set(value, this.pos);
    this.pos += value.length;
  }

  /** Writes at `offset`, which has room for 3 bytes per UTF-16 unit; returns the byte count. */
  private writeUtf8(value: string, offset: number): number {
    const chars = value.length;
    if (chars <= SHORT_STRING) {
      const buf = this.buf;
      let i = 0;
      for (; i < chars; i++) {
        const c = value.charCodeAt(i);
        if (c >= 0x80) break;
        buf[offset + i] = c;
      }
      if (i === chars) return chars;
    }
    return this.buf.write(value, offset, "utf8");
  }

  private ensure(extra: number): void {
    const needed = this.pos + extra;
    if (needed <= this.buf.length) return;
    let capacity = this.buf.length * 2;
    while (capacity < needed) capacity *= 2;
    const grown = Buffer.allocUnsafe(capacity);
    this.buf.copy(grown, 0, 0, this.pos);
    this.buf = grown;
  }
}

/** Bytes a uvarint of the non-negative safe integer `value` takes. */
export function uvarintSize(value: number): number {
  let size = 1;
  let v = value;
  while (v >= 0x80) {
    v = Math.floor(v / 0x80);
    size++;
  }
  return size;
}

function writeUvarintNumber(buf: Buffer, offset: number, value: number): number {
  let p = offset;
  let v = value;
  // Bit operators truncate to 32 bits, so large values step down by division first.
  while (v > 0x7fff_ffff) {
    buf[p++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  while (v > 0x7f) {
    buf[p++] = (v & 0x7f) | 0x80;
    v >>>= 7;
  }
  buf[p++] = v;
  return p;
}
