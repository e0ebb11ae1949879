/**
 * A column value's text as a range of UTF-8 bytes in a buffer (the pgoutput
 * message it arrived in): how the capture carries a value from pgoutput into
 * a frame, never copied and never decoded. A plain object with offsets, not a
 * Buffer view: creating a view per value cost more than decoding it into a
 * string did.
 */
export class TextBytes {
  constructor(
    readonly buf: Buffer,
    readonly start: number,
    readonly end: number,
  ) {}

  /** Its UTF-8 text in a buffer of its own (for tests, and values that must outlive buf's memory). */
  static of(bytes: Uint8Array): TextBytes {
    const own = Buffer.from(bytes);
    return new TextBytes(own, 0, own.length);
  }

  get length(): number {
    return this.end - this.start;
  }

  /** The bytes, as a view of buf. */
  view(): Buffer {
    return this.buf.subarray(this.start, this.end);
  }

  /** The same bytes in memory of their own, so that they outlive a reuse of buf. */
  copy(): TextBytes {
    return TextBytes.of(this.view());
  }

  equals(other: TextBytes): boolean {
    const length = this.end - this.start;
    if (other.end - other.start !== length) return false;
    if (length > SHORT_BYTES)
      return this.buf.compare(other.buf, other.start, other.end, this.start, this.end) === 0;
    // A JS loop beats a call into C++ for the short values most columns hold.
    const a = this.buf;
    const b = other.buf;
    const offset = other.start - this.start;
    for (let i = this.start; i < this.end; i++) if (a[i] !== b[i + offset]) return false;
    return true;
  }

  /** The text, decoded: only where a value must be shown. */
  toString(): string {
    return this.buf.toString("utf8", this.start, this.end);
  }

  /** As text in JSON (a log line, a report), never as the buffer it points into. */
  toJSON(): string {
    return this.toString();
  }
}

/** A value as text: where it must be a statement parameter or be shown. */
export function valueText(value: string | TextBytes | null): string | null {
  return value === null || typeof value === "string" ? value : value.toString();
}

/** Up to this many bytes, values are compared by a JS loop. */
const SHORT_BYTES = 32;
