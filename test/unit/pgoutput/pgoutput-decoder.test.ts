import { describe, expect, it } from "vitest";
import {
  decodePgoutput,
  decodePgoutputBytes,
  OversizedValue,
  PgoutputDecodeError,
  UNCHANGED_TOAST,
} from "../../../connectors/postgres-source/pgoutput/pgoutput-decoder.js";
import { TextBytes } from "../../../src/change/text-bytes.js";

/** Writes pgoutput fields big-endian, as PostgreSQL sends them. */
class Builder {
  private parts: Buffer[] = [];

  char(c: string): this {
    this.parts.push(Buffer.from(c, "latin1"));
    return this;
  }
  u8(v: number): this {
    this.parts.push(Buffer.from([v]));
    return this;
  }
  i16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeInt16BE(v);
    this.parts.push(b);
    return this;
  }
  i32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeInt32BE(v);
    this.parts.push(b);
    return this;
  }
  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v);
    this.parts.push(b);
    return this;
  }
  u64(v: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(v);
    this.parts.push(b);
    return this;
  }
  i64(v: bigint): this {
    const b = Buffer.alloc(8);
    b.writeBigInt64BE(v);
    this.parts.push(b);
    return this;
  }
  str(s: string): this {
    this.parts.push(Buffer.from(s, "utf8"), Buffer.from([0]));
    return this;
  }
  bytes(b: Buffer): this {
    this.parts.push(b);
    return this;
  }
  /** TupleData: null for 'n', UNCHANGED_TOAST for 'u', strings as 't'. */
  tuple(values: (string | null | typeof UNCHANGED_TOAST)[]): this {
    this.i16(values.length);
    for (const v of values) {
      if (v === null) this.char("n");
      else if (v === UNCHANGED_TOAST) this.char("u");
      else {
        const b = Buffer.from(v, "utf8");
        this.char("t").i32(b.length).bytes(b);
      }
    }
    return this;
  }
  build(): Buffer {
    return Buffer.concat(this.parts);
  }
}

const b = () => new Builder();
/** 2024-01-02 03:04:05.123456 UTC in PostgreSQL's epoch (2000-01-01). */
const PG_MICROS = 757_479_845_123_456n;
const UNIX_MICROS = 1_704_164_645_123_456n;

describe("decodePgoutput", () => {
  it("decodes Begin with the commit time moved to the Unix epoch", () => {
    const msg = decodePgoutput(b().char("B").u64(0x1_0163_b1a8n).i64(PG_MICROS).u32(4_000_000_000).build());
    expect(msg).toEqual({
      tag: "begin",
      finalLsn: 0x1_0163_b1a8n,
      commitTimeMicros: UNIX_MICROS,
      xid: 4_000_000_000,
    });
    expect(new Date(Number(UNIX_MICROS / 1000n)).toISOString()).toBe("2024-01-02T03:04:05.123Z");
  });

  it("decodes Commit", () => {
    const msg = decodePgoutput(b().char("C").u8(0).u64(100n).u64(148n).i64(PG_MICROS).build());
    expect(msg).toEqual({
      tag: "commit",
      flags: 0,
      commitLsn: 100n,
      endLsn: 148n,
      commitTimeMicros: UNIX_MICROS,
    });
  });

  it("decodes Origin", () => {
    expect(decodePgoutput(b().char("O").u64(42n).str("node_a").build())).toEqual({
      tag: "origin",
      originLsn: 42n,
      name: "node_a",
    });
  });

  it("decodes Relation, with pg_catalog for the empty namespace and every identity kind", () => {
    const relation = (identity: string, namespace: string) =>
      b()
        .char("R")
        .u32(16_389)
        .str(namespace)
        .str("Tëble")
        .char(identity)
        .i16(2)
        .u8(1)
        .str("id")
        .u32(23)
        .i32(-1)
        .u8(0)
        .str("naïve")
        .u32(1043)
        .i32(14)
        .build();
    expect(decodePgoutput(relation("d", "public"))).toEqual({
      tag: "relation",
      relationId: 16_389,
      schema: "public",
      table: "Tëble",
      replicaIdentity: "default",
      columns: [
        { name: "id", typeOid: 23, typeModifier: -1, isKey: true },
        { name: "naïve", typeOid: 1043, typeModifier: 14, isKey: false },
      ],
    });
    expect(decodePgoutput(relation("f", ""))).toMatchObject({
      schema: "pg_catalog",
      replicaIdentity: "full",
    });
    expect(decodePgoutput(relation("i", "s"))).toMatchObject({ replicaIdentity: "index" });
    expect(decodePgoutput(relation("n", "s"))).toMatchObject({ replicaIdentity: "nothing" });
    expect(() => decodePgoutput(relation("x", "s"))).toThrow(/unknown replica identity 0x78 'x'/);
  });

  it("decodes Type", () => {
    expect(decodePgoutput(b().char("Y").u32(16_400).str("app").str("mood").build())).toEqual({
      tag: "type",
      typeOid: 16_400,
      schema: "app",
      name: "mood",
    });
  });

  it("decodes Insert with NULLs, empty strings and multibyte UTF-8 exactly", () => {
    const values = [
      "1",
      null,
      "",
      "日本語 ✓ 𝄞 emoji 😀",
      '{"a":1,  "a" : 2}',
      "2024-01-02 03:04:05.123456+00",
    ];
    const msg = decodePgoutput(b().char("I").u32(7).char("N").tuple(values).build());
    expect(msg).toEqual({ tag: "insert", relationId: 7, newTuple: values });
  });

  it("gives values as ranges of their UTF-8 bytes in the message with decodePgoutputBytes, never copied", () => {
    const values: (string | null | typeof UNCHANGED_TOAST)[] = [
      "1",
      null,
      "",
      "日本語 ✓ 𝄞 😀",
      UNCHANGED_TOAST,
      "x".repeat(300),
    ];
    const message = b().char("U").u32(7).char("O").tuple(values).char("N").tuple(values).build();
    const msg = decodePgoutputBytes(message);
    if (msg.tag !== "update" || msg.oldTuple === undefined)
      throw new Error(`not an update with its old row: ${msg.tag}`);
    expect(msg.oldKind).toBe("old");
    for (const tuple of [msg.oldTuple, msg.newTuple]) {
      expect(tuple.map((v) => (v instanceof TextBytes ? v.toString() : v))).toEqual(values);
      for (const v of tuple) if (v instanceof TextBytes) expect(v.buf).toBe(message);
    }
    const text = msg.newTuple[3] as TextBytes;
    expect(text.start).toBe(message.lastIndexOf(Buffer.from("日本語")));
    expect(text.length).toBe(Buffer.byteLength("日本語 ✓ 𝄞 😀"));
  });

  it("decodes a message that starts inside a buffer (after the XLogData header) as if it stood alone", () => {
    const message = b().char("U").u32(7).char("O").tuple(["1", "é"]).char("N").tuple(["1", "ü"]).build();
    const header = Buffer.alloc(25, 0xff);
    const framed = Buffer.concat([header, message]);
    const alone = decodePgoutputBytes(message);
    const inPlace = decodePgoutputBytes(framed, undefined, header.length);
    const texts = (m: typeof alone) =>
      m.tag === "update" ? [m.oldTuple, m.newTuple].map((t) => t?.map((v) => String(v))) : m.tag;
    expect(texts(inPlace)).toEqual(texts(alone));
    expect(texts(inPlace)).toEqual([
      ["1", "é"],
      ["1", "ü"],
    ]);
    if (inPlace.tag !== "update") throw new Error(inPlace.tag);
    expect((inPlace.newTuple[1] as TextBytes).buf).toBe(framed);
    // Offsets in errors count from the message's own first byte, not the buffer's.
    const cut = Buffer.concat([header, b().char("I").u32(7).char("N").i16(1).char("t").i32(10).build()]);
    expect(() => decodePgoutputBytes(cut, undefined, header.length)).toThrow(
      /truncated: text value of column 0 needs 10 byte\(s\) at offset 13, message has 13/,
    );
    expect(() => decodePgoutputBytes(header, undefined, header.length)).toThrow(/empty pgoutput message/);
  });

  it("leaves a value above maxValueBytes undecoded, as its size, in either form", () => {
    const message = b().char("I").u32(7).char("N").tuple(["1", "abcdef"]).build();
    expect(decodePgoutput(message, 5)).toEqual({
      tag: "insert",
      relationId: 7,
      newTuple: ["1", new OversizedValue(6)],
    });
    expect(decodePgoutputBytes(message, 5)).toEqual({
      tag: "insert",
      relationId: 7,
      newTuple: [
        new TextBytes(message, message.indexOf("1", 8), message.indexOf("1", 8) + 1),
        new OversizedValue(6),
      ],
    });
  });

  it("decodes Update without an old tuple, with a key, and with the old row", () => {
    expect(decodePgoutput(b().char("U").u32(7).char("N").tuple(["1", UNCHANGED_TOAST]).build())).toEqual({
      tag: "update",
      relationId: 7,
      newTuple: ["1", UNCHANGED_TOAST],
    });
    expect(
      decodePgoutput(b().char("U").u32(7).char("K").tuple(["1", null]).char("N").tuple(["2", "x"]).build()),
    ).toEqual({ tag: "update", relationId: 7, oldKind: "key", oldTuple: ["1", null], newTuple: ["2", "x"] });
    const full = decodePgoutput(
      b()
        .char("U")
        .u32(7)
        .char("O")
        .tuple(["1", UNCHANGED_TOAST])
        .char("N")
        .tuple(["1", UNCHANGED_TOAST])
        .build(),
    );
    expect(full).toEqual({
      tag: "update",
      relationId: 7,
      oldKind: "old",
      oldTuple: ["1", UNCHANGED_TOAST],
      newTuple: ["1", UNCHANGED_TOAST],
    });
    expect(() =>
      decodePgoutput(b().char("U").u32(7).char("K").tuple(["1"]).char("X").tuple(["1"]).build()),
    ).toThrow(/expected 'N' before the new tuple, got 0x58 'X'/);
  });

  it("decodes Delete by key and by old row", () => {
    expect(decodePgoutput(b().char("D").u32(9).char("K").tuple(["5", null]).build())).toEqual({
      tag: "delete",
      relationId: 9,
      oldKind: "key",
      oldTuple: ["5", null],
    });
    expect(decodePgoutput(b().char("D").u32(9).char("O").tuple(["5", "ü"]).build())).toMatchObject({
      oldKind: "old",
      oldTuple: ["5", "ü"],
    });
    expect(() => decodePgoutput(b().char("D").u32(9).char("N").tuple(["5"]).build())).toThrow(
      /expected 'K' or 'O'/,
    );
  });

  it("decodes Truncate options and relation list", () => {
    expect(decodePgoutput(b().char("T").i32(2).u8(3).u32(10).u32(4_000_000_000).build())).toEqual({
      tag: "truncate",
      cascade: true,
      restartIdentity: true,
      relationIds: [10, 4_000_000_000],
    });
    expect(decodePgoutput(b().char("T").i32(1).u8(2).u32(10).build())).toMatchObject({
      cascade: false,
      restartIdentity: true,
    });
  });

  it("decodes logical decoding messages with their bytes intact", () => {
    const content = Buffer.from([0, 1, 0xff, 0xfe, 0x41]);
    const msg = decodePgoutput(
      b().char("M").u8(1).u64(0x2a0n).str("diffrelay.ddl").i32(5).bytes(content).build(),
    );
    expect(msg).toEqual({
      tag: "message",
      transactional: true,
      lsn: 0x2a0n,
      prefix: "diffrelay.ddl",
      content,
    });
    expect(decodePgoutput(b().char("M").u8(0).u64(1n).str("p").i32(0).build())).toMatchObject({
      transactional: false,
      content: Buffer.alloc(0),
    });
  });

  it("refuses binary values, which are never requested", () => {
    const buf = b().char("I").u32(7).char("N").i16(1).char("b").i32(1).u8(0).build();
    expect(() => decodePgoutput(buf)).toThrow(/binary value for column 0/);
  });

  it("names unknown and streaming/two-phase tags", () => {
    expect(() => decodePgoutput(Buffer.from("S\0\0\0\x01\x01"))).toThrow(
      /unsupported pgoutput message tag 0x53 'S' \(Stream Start \(protocol 2\+\)/,
    );
    expect(() => decodePgoutput(Buffer.from("P"))).toThrow(/0x50 'P' \(Prepare/);
    expect(() => decodePgoutput(Buffer.from([0x01]))).toThrow(/unsupported pgoutput message tag 0x01$/);
    expect(() => decodePgoutput(Buffer.alloc(0))).toThrow(/empty pgoutput message/);
  });

  it("fails clearly on every truncation of a well-formed message", () => {
    const messages = [
      b().char("B").u64(1n).i64(PG_MICROS).u32(1).build(),
      b().char("C").u8(0).u64(1n).u64(2n).i64(PG_MICROS).build(),
      b().char("R").u32(1).str("s").str("t").char("d").i16(1).u8(1).str("c").u32(23).i32(-1).build(),
      b().char("I").u32(7).char("N").tuple(["héllo", null, UNCHANGED_TOAST]).build(),
      b().char("U").u32(7).char("O").tuple(["1"]).char("N").tuple(["2"]).build(),
      b().char("T").i32(2).u8(0).u32(1).u32(2).build(),
      b().char("M").u8(1).u64(1n).str("p").i32(3).bytes(Buffer.from("abc")).build(),
    ];
    for (const full of messages) {
      for (let length = 1; length < full.length; length++) {
        expect(() => decodePgoutput(full.subarray(0, length)), `${full[0]} cut at ${length}`).toThrow(
          PgoutputDecodeError,
        );
      }
    }
    expect(() => decodePgoutput(b().char("I").u32(7).char("N").i16(1).char("t").i32(10).build())).toThrow(
      /truncated: text value of column 0 needs 10 byte\(s\) at offset 13, message has 13/,
    );
  });

  it("refuses trailing bytes and negative lengths", () => {
    expect(() => decodePgoutput(b().char("O").u64(1n).str("x").u8(0).build())).toThrow(
      /1 unexpected trailing byte/,
    );
    expect(() => decodePgoutput(b().char("I").u32(7).char("N").i16(1).char("t").i32(-2).build())).toThrow(
      /negative text value length -2/,
    );
    expect(() => decodePgoutput(b().char("I").u32(7).char("N").i16(-1).build())).toThrow(
      /negative tuple column count -1/,
    );
  });
});
