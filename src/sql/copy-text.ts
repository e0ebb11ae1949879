import type { WritableValue } from "../change/change-model.js";
import type { TextBytes } from "../change/text-bytes.js";

/**
 * COPY's text format (FORMAT text, the default delimiter and NULL): each value
 * is the type's own text representation, as an INSERT of `$n::text` would pass
 * it to the type's input function; only the characters COPY itself reads are
 * escaped: backslash, the tab delimiter, and line ends.
 */
const SPECIAL = /[\\\t\n\r]/;
const SPECIALS = /[\\\t\n\r]/g;
const ESCAPES: Record<string, string> = { "\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r" };
const TAB = 0x09;
const LINE_END = 0x0a;
const CARRIAGE_RETURN = 0x0d;
const BACKSLASH = 0x5c;
/** COPY's escape letter for each byte that needs one (t, n, r, or the backslash itself); 0: none. */
const ESCAPE_LETTER = new Uint8Array(128);
ESCAPE_LETTER[TAB] = 0x74;
ESCAPE_LETTER[LINE_END] = 0x6e;
ESCAPE_LETTER[CARRIAGE_RETURN] = 0x72;
ESCAPE_LETTER[BACKSLASH] = BACKSLASH;
/** Up to this many bytes a value's bytes are copied by a JS loop rather than a call into C++. */
const SHORT_BYTES = 32;
/** The most UTF-8 bytes one UTF-16 code unit can take. */
const MAX_BYTES_PER_UNIT = 3;
/** From this many UTF-16 units on, a value's UTF-8 size is counted rather than bounded. */
const EXACT_SIZE_FROM = 4096;

/**
 * Rows of COPY text data written straight into one growing buffer. Building
 * the rows as one string and encoding it afterwards cost 2–4× as much for
 * 200,000 four-column rows (an array per row, the string concatenated,
 * flattened, then encoded again).
 */
export class CopyTextWriter {
  private buf: Buffer;
  private used = 0;

  constructor(initialBytes = 16 * 1024) {
    this.buf = Buffer.allocUnsafe(Math.max(1, initialBytes));
  }

  /**
   * Appends one row of `count` values, the i-th read through valueAt(i), line
   * end included. A value given as its UTF-8 bytes goes in as those bytes,
   * escaped byte by byte: every byte COPY reads specially is ASCII, which no
   * byte of a multi-byte UTF-8 character is.
   */
  row(count: number, valueAt: (i: number) => WritableValue): void {
    for (let i = 0; i < count; i++) {
      const value = valueAt(i);
      if (value === null || typeof value === "string") this.text(value);
      else this.textBytes(value);
      this.buf[this.used++] = i === count - 1 ? LINE_END : TAB;
    }
  }

  /** A value's text, with room left for the delimiter after it. */
  private text(value: string | null): void {
    const text =
      value === null ? "\\N" : SPECIAL.test(value) ? value.replace(SPECIALS, escapeCopyCharacter) : value;
    // A long value reserves its exact size: three bytes per unit of a value of hundreds of MB
    // would allocate three times what it takes.
    const bound =
      text.length > EXACT_SIZE_FROM ? Buffer.byteLength(text, "utf8") : text.length * MAX_BYTES_PER_UNIT;
    this.reserve(bound + 1);
    this.used += this.buf.write(text, this.used, "utf8");
  }

  /** A value's UTF-8 bytes, with room left for the delimiter after it. */
  private textBytes(value: TextBytes): void {
    const { buf: from, start, end } = value;
    let escapes = 0;
    for (let i = start; i < end; i++) {
      const byte = from[i] as number;
      if (byte < 128 && ESCAPE_LETTER[byte] !== 0) escapes++;
    }
    this.reserve(end - start + escapes + 1);
    const to = this.buf;
    let at = this.used;
    if (escapes === 0 && end - start > SHORT_BYTES) {
      at += from.copy(to, at, start, end);
    } else {
      for (let i = start; i < end; i++) {
        const byte = from[i] as number;
        const letter = byte < 128 ? (ESCAPE_LETTER[byte] as number) : 0;
        if (letter !== 0) {
          to[at++] = BACKSLASH;
          to[at++] = letter;
        } else to[at++] = byte;
      }
    }
    this.used = at;
  }

  /** The rows written so far, as a view of the writer's buffer. */
  bytes(): Buffer {
    return this.buf.subarray(0, this.used);
  }

  private reserve(bytes: number): void {
    if (this.used + bytes <= this.buf.length) return;
    const grown = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.used + bytes));
    this.buf.copy(grown, 0, 0, this.used);
    this.buf = grown;
  }
}

function escapeCopyCharacter(character: string): string {
  return ESCAPES[character] as string;
}
