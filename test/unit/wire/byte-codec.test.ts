import { describe, expect, it } from "vitest";
import { ByteReader } from "../../../src/wire/byte-reader.js";
import { ByteWriter, uvarintSize } from "../../../src/wire/byte-writer.js";
import { WireFormatError } from "../../../src/wire/wire-format-error.js";

function bytes(write: (w: ByteWriter) => void): Buffer {
  const w = new ByteWriter(16);
  write(w);
  return w.toBuffer();
}

function readError(buf: Buffer, read: (r: ByteReader) => unknown): WireFormatError {
  try {
    read(new ByteReader(buf));
  } catch (error) {
    if (error instanceof WireFormatError) return error;
    throw error;
  }
  throw new Error("expected a WireFormatError");
}

describe("uvarint", () => {
  it.each([
    [0, "00"],
    [1, "01"],
    [127, "7f"],
    [128, "8001"],
    [300, "ac02"],
    [16383, "ff7f"],
    [16384, "808001"],
    [2 ** 31 - 1, "ffffffff07"],
    [2 ** 32, "8080808010"],
    [Number.MAX_SAFE_INTEGER, "ffffffffffffff0f"],
  ])("encodes %d as LEB128 %s and reads it back", (value, hex) => {
    const buf = bytes((w) => w.uvarint(value));
    expect(buf.toString("hex")).toBe(hex);
    expect(uvarintSize(value)).toBe(buf.length);
    const r = new ByteReader(buf);
    expect(r.uvarint("v")).toBe(value);
    expect(r.remaining).toBe(0);
  });

  it.each([
    [0n, "00"],
    [2n ** 53n, "8080808080808010"],
    [2n ** 63n, "80808080808080808001"],
    [2n ** 64n - 1n, "ffffffffffffffffff01"],
  ])("encodes the u64 %s as %s and reads it back", (value, hex) => {
    const buf = bytes((w) => w.uvarintBig(value));
    expect(buf.toString("hex")).toBe(hex);
    expect(new ByteReader(buf).uvarintBig("v")).toBe(value);
  });

  it("refuses values it cannot encode instead of writing garbage", () => {
    const w = new ByteWriter();
    expect(() => w.uvarint(-1)).toThrow(RangeError);
    expect(() => w.uvarint(1.5)).toThrow(RangeError);
    expect(() => w.uvarint(Number.NaN)).toThrow(RangeError);
    expect(() => w.uvarint(2 ** 53)).toThrow(RangeError);
    expect(() => w.uvarintBig(2n ** 64n)).toThrow(RangeError);
    expect(() => w.uvarintBig(-1n)).toThrow(RangeError);
    expect(w.length).toBe(0);
  });

  it("refuses a varint of more than 64 bits", () => {
    const tenth = readError(Buffer.from("ffffffffffffffffff02", "hex"), (r) => r.uvarintBig("lsn"));
    expect(tenth.reason).toBe("bad-value");
    expect(tenth.offset).toBe(0);
    const eleven = readError(Buffer.from("ffffffffffffffffff8101", "hex"), (r) => r.uvarintBig("lsn"));
    expect(eleven.reason).toBe("bad-value");
  });

  it("refuses overlong encodings, so that each value has one encoding", () => {
    expect(readError(Buffer.from("8000", "hex"), (r) => r.uvarint("n")).reason).toBe("bad-value");
    expect(readError(Buffer.from("ff8000", "hex"), (r) => r.uvarint("n")).reason).toBe("bad-value");
    expect(readError(Buffer.from("80808080808080808000", "hex"), (r) => r.uvarintBig("n")).reason).toBe(
      "bad-value",
    );
  });

  it("reports a varint cut short as truncated at the varint's first byte", () => {
    const buf = Buffer.from("0580", "hex");
    const r = new ByteReader(buf);
    r.u8("tag");
    const error = readError(buf.subarray(1), (rr) => rr.uvarint("relation index"));
    expect(error.reason).toBe("truncated");
    expect(error.message).toMatch(/relation index.*at byte 0/);
    expect(() => r.uvarint("relation index")).toThrow(/at byte 1\)$/);
  });

  it("refuses a number above the caller's maximum, or one needing a bigint", () => {
    expect(readError(Buffer.from("8002", "hex"), (r) => r.uvarint("relation id", 255)).reason).toBe(
      "bad-value",
    );
    const big = bytes((w) => w.uvarintBig(2n ** 60n));
    expect(readError(big, (r) => r.uvarint("count")).message).toMatch(/count 1152921504606846976 exceeds/);
  });
});

describe("svarint", () => {
  it.each([
    [0, "00"],
    [-1, "01"],
    [1, "02"],
    [-64, "7f"],
    [64, "8001"],
    [2 ** 52, "8080808080808010"],
    [-(2 ** 52), "ffffffffffffff0f"],
    [Number.MAX_SAFE_INTEGER, "feffffffffffff1f"],
    [Number.MIN_SAFE_INTEGER, "fdffffffffffff1f"],
  ])("zigzags %d as %s", (value, hex) => {
    const buf = bytes((w) => w.svarint(value));
    expect(buf.toString("hex")).toBe(hex);
    expect(new ByteReader(buf).svarint("v")).toBe(value);
    expect(new ByteReader(buf).svarintBig("v")).toBe(BigInt(value));
    expect(new ByteReader(buf).svarintDecimal("v")).toBe(String(value));
  });

  it.each([
    [2n ** 63n - 1n, "feffffffffffffffff01"],
    [-(2n ** 63n), "ffffffffffffffffff01"],
    [-(2n ** 62n), "ffffffffffffffff7f"],
  ])("zigzags the int64 %s as %s", (value, hex) => {
    const buf = bytes((w) => w.svarintBig(value));
    expect(buf.toString("hex")).toBe(hex);
    expect(new ByteReader(buf).svarintBig("v")).toBe(value);
    expect(new ByteReader(buf).svarintDecimal("v")).toBe(value.toString());
  });

  it("refuses a number read that is not a safe integer", () => {
    const buf = bytes((w) => w.svarintBig(2n ** 60n));
    expect(readError(buf, (r) => r.svarint("xid")).reason).toBe("bad-value");
  });

  it("refuses int64 overflow when writing", () => {
    expect(() => new ByteWriter().svarintBig(2n ** 63n)).toThrow(RangeError);
    expect(() => new ByteWriter().svarint(2 ** 53)).toThrow(RangeError);
  });
});

describe("fixed-width integers", () => {
  it("writes big-endian and reads back", () => {
    const buf = bytes((w) => {
      w.u8(0xab);
      w.u32(0xdeadbeef);
      w.u64(0x0102030405060708n);
    });
    expect(buf.toString("hex")).toBe("abdeadbeef0102030405060708");
    const r = new ByteReader(buf);
    expect(r.u8("a")).toBe(0xab);
    expect(r.u32("b")).toBe(0xdeadbeef);
    expect(r.u64("c")).toBe(0x0102030405060708n);
  });

  it("reports truncation with the field's offset", () => {
    const buf = Buffer.from("01020304050607", "hex");
    const r = new ByteReader(buf);
    r.u8("x");
    expect(() => r.u64("source id")).toThrow(/source id \(at byte 1\)/);
    expect(() => new ByteReader(Buffer.alloc(3)).u32("version")).toThrow(WireFormatError);
    expect(() => new ByteReader(Buffer.alloc(0)).u8("tag")).toThrow(WireFormatError);
  });

  it("patches a byte already written", () => {
    const w = new ByteWriter();
    w.u8(0);
    w.u8(7);
    w.patchU8(0, 1);
    expect(w.toBuffer().toString("hex")).toBe("0107");
    expect(() => w.patchU8(2, 1)).toThrow(RangeError);
  });
});

describe("strings", () => {
  const samples = [
    "",
    "a",
    "plain ascii that is longer than thirty-two characters for sure",
    "é",
    "naïve café",
    "e\u0301\u0302 combining marks",
    "emoji 🎉👩‍👩‍👧‍👦 family",
    "中文字符",
    "x".repeat(42),
    "é".repeat(42),
    "🎉".repeat(21),
    "\u{10FFFF}",
  ];

  it.each(samples)("round-trips %j with its exact UTF-8 byte length", (text) => {
    const buf = bytes((w) => w.string(text));
    const r = new ByteReader(buf);
    const length = r.uvarint("length");
    expect(length).toBe(Buffer.byteLength(text, "utf8"));
    expect(buf.subarray(r.offset).toString("utf8")).toBe(text);
    expect(new ByteReader(buf).string("s")).toBe(text);
  });

  it("writes a minimal length prefix around every prefix-size boundary", () => {
    for (const [char, bias] of [
      ["a", 0],
      ["é", 0],
      ["中", 2],
      ["🎉", 2],
    ] as const) {
      for (let n = 0; n < 200; n++) {
        const text = char.repeat(n);
        const buf = bytes((w) => w.utf8WithLengthPrefix(text, bias));
        const byteLength = Buffer.byteLength(text);
        expect(buf.length).toBe(uvarintSize(byteLength + bias) + byteLength);
        const r = new ByteReader(buf);
        const header = r.uvarint("h");
        expect(header).toBe(byteLength + bias);
        expect(r.utf8(header - bias, "s", 0)).toBe(text);
      }
    }
  });

  it("grows the buffer by doubling for a 1 MB string", () => {
    const text = "ü".repeat(512 * 1024);
    const w = new ByteWriter(16);
    w.u8(9);
    w.string(text);
    const r = new ByteReader(w.toBuffer());
    expect(r.u8("x")).toBe(9);
    expect(r.string("s")).toBe(text);
  });

  it("refuses invalid UTF-8 but accepts a genuine U+FFFD", () => {
    const invalid = Buffer.from([3, 0x61, 0xc3, 0x28]);
    const error = readError(invalid, (r) => r.string("table name"));
    expect(error.reason).toBe("bad-value");
    expect(error.message).toMatch(/table name is not valid UTF-8 \(at byte 0\)/);
    const replacement = bytes((w) => w.string("a\uFFFDb"));
    expect(new ByteReader(replacement).string("s")).toBe("a\uFFFDb");
  });

  it("reports a length beyond the message as truncated", () => {
    const error = readError(Buffer.from([10, 0x61]), (r) => r.string("command"));
    expect(error.reason).toBe("truncated");
    expect(error.message).toMatch(/command needs 10 bytes, only 1 left/);
  });

  it("refuses a count larger than the bytes left", () => {
    const error = readError(Buffer.from([5, 0, 0]), (r) => r.count("column count"));
    expect(error.reason).toBe("truncated");
    expect(error.message).toMatch(/column count 5 exceeds the 2 bytes left/);
  });
});

describe("ByteWriter", () => {
  it("reuses its buffer after reset and hands out independent copies", () => {
    const w = new ByteWriter(16);
    w.string("first");
    const first = w.toBuffer();
    w.reset();
    w.string("other");
    expect(new ByteReader(first).string("s")).toBe("first");
    expect(new ByteReader(w.toBuffer()).string("s")).toBe("other");
  });

  it("truncates to an earlier length", () => {
    const w = new ByteWriter();
    w.u8(1);
    w.u32(5);
    w.truncate(1);
    expect(w.toBuffer().toString("hex")).toBe("01");
    expect(() => w.truncate(2)).toThrow(RangeError);
  });
});
