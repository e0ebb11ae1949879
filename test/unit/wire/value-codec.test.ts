import { describe, expect, it } from "vitest";
import type { ColumnValue } from "../../../src/change/change-model.js";
import { TextBytes } from "../../../src/change/text-bytes.js";
import { ByteReader } from "../../../src/wire/byte-reader.js";
import { ByteWriter } from "../../../src/wire/byte-writer.js";
import {
  canonicalInteger,
  canonicalIntegerOfBytes,
  JOINED_VALUE,
  readValue,
  writeJoinedValue,
  writeValue,
} from "../../../src/wire/value-codec.js";
import { WireFormatError } from "../../../src/wire/wire-format-error.js";

function encode(value: ColumnValue): Buffer {
  const w = new ByteWriter(16);
  writeValue(w, value);
  return w.toBuffer();
}

function decode(buf: Buffer): ColumnValue {
  const r = new ByteReader(buf);
  const value = readValue(r, 2);
  expect(r.remaining).toBe(0);
  if (value === JOINED_VALUE) throw new Error("a joined value where a plain one was written");
  return value;
}

describe("column values", () => {
  it("encodes NULL as the single header byte 0", () => {
    expect(encode(null).toString("hex")).toBe("00");
    expect(decode(Buffer.from([0]))).toBeNull();
  });

  it("keeps the empty string distinct from NULL", () => {
    expect(encode("").toString("hex")).toBe("03");
    expect(decode(encode(""))).toBe("");
  });

  it("reads header 2 as a joined value in version 2 and as the empty text in version 1", () => {
    const w = new ByteWriter(4);
    writeJoinedValue(w);
    expect(w.toBuffer().toString("hex")).toBe("02");
    expect(readValue(new ByteReader(w.toBuffer()), 2)).toBe(JOINED_VALUE);
    expect(readValue(new ByteReader(Buffer.from("02", "hex")), 1)).toBe("");
    expect(readValue(new ByteReader(Buffer.from("046162", "hex")), 1)).toBe("ab");
    expect(readValue(new ByteReader(Buffer.from("056162", "hex")), 2)).toBe("ab");
  });

  it.each([
    ["0", "0100"],
    ["1", "0102"],
    ["-1", "0101"],
    ["123456", "0180890f"],
    ["9223372036854775807", "01feffffffffffffffff01"],
    ["-9223372036854775808", "01ffffffffffffffffff01"],
    ["999999999999999", "01feffb3ccd4dfc603"],
    ["1000000000000000", "018080b4ccd4dfc603"],
  ])("spells the canonical integer %s as an svarint (%s)", (text, hex) => {
    expect(encode(text).toString("hex")).toBe(hex);
    expect(decode(encode(text))).toBe(text);
  });

  it.each([
    "-0",
    "007",
    "00",
    "+1",
    " 1",
    "1 ",
    "1.50",
    "1e3",
    "0x10",
    "-",
    "NaN",
    "Infinity",
    "-Infinity",
    "9223372036854775808",
    "-9223372036854775809",
    "99999999999999999999",
    "１２３",
    "12a",
  ])("keeps %j as text, so that it decodes to the identical spelling", (text) => {
    const buf = encode(text);
    const header = new ByteReader(buf).uvarint("h");
    expect(header).toBe(Buffer.byteLength(text) + 3);
    expect(decode(buf)).toBe(text);
  });

  it("agrees with a regular expression on which texts are canonical integers", () => {
    const pattern = /^(0|-?[1-9][0-9]*)$/;
    const samples = [
      "0",
      "5",
      "-5",
      "10",
      "05",
      "-05",
      "--5",
      "",
      "1234567890123456789",
      "12345678901234567890",
    ];
    for (let digits = 1; digits <= 20; digits++) {
      samples.push("9".repeat(digits), `-${"9".repeat(digits)}`, `1${"0".repeat(digits - 1)}`);
    }
    for (const text of samples) {
      const expected = pattern.test(text) && BigInt(text) >= -(2n ** 63n) && BigInt(text) < 2n ** 63n;
      const integer = canonicalInteger(text);
      expect(integer !== undefined, text).toBe(expected);
      if (integer !== undefined) expect(String(integer)).toBe(text);
      expect(decode(encode(text))).toBe(text);
    }
  });

  it.each([
    ["emoji", "🎉 party 👩‍💻"],
    ["combining marks", "e\u0301 a\u0308 n\u0303"],
    ["CJK", "日本語のテキスト"],
    ["json with duplicate keys and odd whitespace", '{"a":1,  "a" : 2,\n\t"b":[ 1 ,2 ]}'],
    ["timestamp with microseconds", "2024-02-29 23:59:59.999999+00"],
    ["bytea hex", "\\x00ff10"],
    ["array", '{1,NULL,"a b"}'],
  ])("round-trips %s byte for byte", (_name, text) => {
    const buf = encode(text);
    expect(buf.subarray(buf.length - Buffer.byteLength(text)).equals(Buffer.from(text, "utf8"))).toBe(true);
    expect(decode(buf)).toBe(text);
  });

  it("writes a value given as its UTF-8 bytes exactly as the same text: the capture's form and the spec's agree", () => {
    const texts = [
      "",
      "0",
      "-0",
      "007",
      "+1",
      "1.0",
      "42",
      "-42",
      "9007199254740993",
      "-9223372036854775808",
      "9223372036854775807",
      "9223372036854775808",
      "12345678901234567890",
      "1".repeat(32),
      "2".repeat(33),
      "🎉 party 👩‍💻",
      "日本語のテキスト",
      "2024-02-29 23:59:59.999999+00",
      "x".repeat(200),
      "0123456789abcdef".repeat(64 * 1024),
    ];
    for (let digits = 1; digits <= 20; digits++) texts.push("9".repeat(digits), `-${"9".repeat(digits)}`);
    for (const text of texts) {
      // Inside a larger buffer, as in a pgoutput message.
      const bytes = new TextBytes(Buffer.from(`12${text}34`, "utf8"), 2, 2 + Buffer.byteLength(text));
      expect(canonicalIntegerOfBytes(bytes), text).toEqual(canonicalInteger(text));
      const w = new ByteWriter(16);
      writeValue(w, bytes);
      expect(w.toBuffer().equals(encode(text)), text.slice(0, 40)).toBe(true);
    }
  });

  it("round-trips a 1 MB value", () => {
    const text = "0123456789abcdef".repeat(64 * 1024);
    const buf = encode(text);
    expect(buf.length).toBe(text.length + 3);
    expect(decode(buf)).toBe(text);
  });

  it("reports a text value cut short as truncated at its header", () => {
    const buf = encode("hello");
    try {
      decode(buf.subarray(0, 3));
      throw new Error("decoded a truncated value");
    } catch (error) {
      expect(error).toBeInstanceOf(WireFormatError);
      expect((error as WireFormatError).reason).toBe("truncated");
      expect((error as WireFormatError).offset).toBe(0);
    }
  });
});
