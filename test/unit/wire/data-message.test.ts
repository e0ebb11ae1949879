import { describe, expect, it } from "vitest";
import type { Change, ColumnValue, TransactionHeader } from "../../../src/change/change-model.js";
import type { SchemaRef } from "../../../src/change/relation-schema.js";
import { TextBytes, valueText } from "../../../src/change/text-bytes.js";
import { ByteWriter } from "../../../src/wire/byte-writer.js";
import {
  DataMessageBuilder,
  type DecodedDataMessage,
  decodeDataMessage,
} from "../../../src/wire/data-message.js";
import { computeSourceId, type Envelope, MessageKind, writeEnvelope } from "../../../src/wire/envelope.js";
import { WireFormatError, type WireFormatErrorReason } from "../../../src/wire/wire-format-error.js";
import { TEST_SESSION } from "../../support/capture-session-id.js";

const envelope: Envelope = { sourceId: computeSourceId("7312345678901234567", "shop"), epoch: 3 };
/** magic 2 + version 1 + kind 1 + source id 8 + epoch 1, then capture id 8 + session 1 */
const ENVELOPE_BYTES = 22;
const orders: SchemaRef = { relationId: 16384, version: 0xdeadbeef };
const items: SchemaRef = { relationId: 16390, version: 0x01020304 };
const T0 = 1_732_518_000_123_456n;

function header(commitLsn: bigint, fields: Partial<TransactionHeader> = {}): TransactionHeader {
  return { commitLsn, commitTimeMicros: T0, xid: 1000, chunk: 0, finalChunk: true, ...fields };
}

function oneTransaction(changes: Change[], h: TransactionHeader = header(0x16b3748n)): Buffer {
  const builder = new DataMessageBuilder(envelope, TEST_SESSION);
  builder.beginTransaction(h);
  for (const change of changes) builder.addChange(change);
  return builder.finish();
}

/** The message decoded both ways, an insert's byte values turned back into text. */
function decodeBothWays(buf: Buffer): { text: DecodedDataMessage; bytes: DecodedDataMessage } {
  const bytes = decodeDataMessage(buf, { insertValues: "bytes" });
  return {
    text: decodeDataMessage(buf),
    bytes: {
      ...bytes,
      chunks: bytes.chunks.map((chunk) => ({
        ...chunk,
        changes: chunk.changes.map((c) =>
          c.kind === "insert" ? { ...c, values: c.values.map(valueText) } : c,
        ),
      })),
    },
  };
}

/** The refusal, the same whether an insert's values are decoded as text or as bytes. */
function decodeError(buf: Buffer): WireFormatError {
  const refusal = (insertValues?: "bytes"): WireFormatError => {
    try {
      if (insertValues) decodeDataMessage(buf, { insertValues });
      else decodeDataMessage(buf);
    } catch (error) {
      if (error instanceof WireFormatError) return error;
      throw error;
    }
    throw new Error("the message decoded");
  };
  const text = refusal();
  expect(refusal("bytes").message).toBe(text.message);
  return text;
}

/** A message written field by field, to build what the builder refuses to produce. */
function handMade(frames: (w: ByteWriter) => void, kind: number = MessageKind.data): Buffer {
  const w = new ByteWriter(64);
  writeEnvelope(w, kind as MessageKind, envelope);
  w.u64(TEST_SESSION.captureId);
  w.uvarint(TEST_SESSION.session);
  frames(w);
  return w.toBuffer();
}

function txBegin(
  w: ByteWriter,
  fields: { flags?: number; lsn?: bigint; time?: bigint; xid?: number; chunk?: number },
) {
  w.u8(0x01);
  w.u8(fields.flags ?? 1);
  w.uvarintBig(fields.lsn ?? 100n);
  w.svarintBig(fields.time ?? T0);
  w.svarint(fields.xid ?? 7);
  w.uvarint(fields.chunk ?? 0);
}

/** Bytes that `frames` writes after the envelope, so that expected offsets follow from the layout. */
function size(frames: (w: ByteWriter) => void): number {
  return handMade(frames).length - ENVELOPE_BYTES;
}

function schemaRef(w: ByteWriter, ref: SchemaRef) {
  w.u8(0x02);
  w.uvarint(ref.relationId);
  w.u32(ref.version);
}

describe("data message round trips", () => {
  it("carries the envelope", () => {
    const decoded = decodeDataMessage(oneTransaction([]));
    expect(decoded.envelope).toEqual(envelope);
    expect(decoded.chunks).toHaveLength(1);
    expect(decoded.chunks[0]?.changes).toEqual([]);
  });

  it("round-trips an insert with NULLs and every value edge", () => {
    const values: ColumnValue[] = [
      "123456",
      null,
      "",
      "-0",
      "007",
      "9223372036854775807",
      "-9223372036854775808",
      "9223372036854775808",
      "1.50",
      "NaN",
      "Infinity",
      "-Infinity",
      "🎉 e\u0301 日本",
      '{"a":1,  "a" : 2 }',
      null,
    ];
    const change: Change = { kind: "insert", relation: orders, values };
    const decoded = decodeDataMessage(oneTransaction([change]));
    expect(decoded.chunks[0]?.changes).toEqual([change]);
  });

  it("round-trips a 1 MB value", () => {
    const big = "x".repeat(1024 * 1024);
    const change: Change = { kind: "insert", relation: orders, values: ["1", big] };
    const decoded = decodeDataMessage(oneTransaction([change]));
    expect(decoded.chunks[0]?.changes).toEqual([change]);
  });

  it("round-trips updates, including a key change and NULLs", () => {
    const changes: Change[] = [
      { kind: "update", relation: orders, key: ["42"], changedColumns: [3], values: ["12.50"] },
      { kind: "update", relation: orders, key: ["42"], changedColumns: [0, 2], values: ["43", null] },
      { kind: "update", relation: items, key: ["a", null, "c"], changedColumns: [1], values: ["b"] },
      { kind: "update", relation: orders, key: ["43"], changedColumns: [], values: [] },
    ];
    expect(decodeDataMessage(oneTransaction(changes)).chunks[0]?.changes).toEqual(changes);
  });

  it("round-trips an update of a table with more than 255 columns using column deltas", () => {
    const changedColumns = [0, 1, 127, 128, 255, 256, 299];
    const change: Change = {
      kind: "update",
      relation: orders,
      key: ["1"],
      changedColumns,
      values: changedColumns.map((c) => `v${c}`),
    };
    const buf = oneTransaction([change]);
    expect(decodeDataMessage(buf).chunks[0]?.changes).toEqual([change]);
    // Deltas 0, 0, 125, 0, 126, 0, 42 each fit one byte although the indexes do not.
    const allColumns = Array.from({ length: 300 }, (_, i) => i);
    const wide: Change = {
      kind: "update",
      relation: orders,
      key: ["1"],
      changedColumns: allColumns,
      values: allColumns.map(String),
    };
    const wideBuf = oneTransaction([wide]);
    expect(decodeDataMessage(wideBuf).chunks[0]?.changes).toEqual([wide]);
  });

  it("round-trips deletes", () => {
    const changes: Change[] = [
      { kind: "delete", relation: orders, key: ["-9223372036854775808"] },
      { kind: "delete", relation: items, key: ["x", "", null] },
    ];
    expect(decodeDataMessage(oneTransaction(changes)).chunks[0]?.changes).toEqual(changes);
  });

  it("round-trips truncates with every flag combination", () => {
    const changes: Change[] = [
      { kind: "truncate", relations: [orders], cascade: false, restartIdentity: false },
      { kind: "truncate", relations: [orders, items], cascade: true, restartIdentity: false },
      { kind: "truncate", relations: [items], cascade: false, restartIdentity: true },
      { kind: "truncate", relations: [items, orders], cascade: true, restartIdentity: true },
    ];
    expect(decodeDataMessage(oneTransaction(changes)).chunks[0]?.changes).toEqual(changes);
  });

  it("round-trips DDL and sequences", () => {
    const changes: Change[] = [
      {
        kind: "ddl",
        searchPath: '"$user", public',
        command: "ALTER TABLE orders ADD COLUMN note text DEFAULT 'é'",
      },
      { kind: "ddl", searchPath: "", command: "" },
      {
        kind: "sequence",
        sequences: [
          { schema: "public", name: "orders_id_seq", lastValue: "9223372036854775807", isCalled: true },
          { schema: "shop", name: "négatif", lastValue: "-5", isCalled: false },
          { schema: "public", name: "odd", lastValue: "007", isCalled: true },
        ],
      },
      { kind: "sequence", sequences: [] },
    ];
    expect(decodeDataMessage(oneTransaction(changes)).chunks[0]?.changes).toEqual(changes);
  });

  it("shares one SCHEMA_REF per relation version in a message and resolves each reference", () => {
    const orders2: SchemaRef = { relationId: orders.relationId, version: 0x0badf00d };
    const changes: Change[] = [
      { kind: "insert", relation: orders, values: ["1"] },
      { kind: "insert", relation: items, values: ["2"] },
      { kind: "insert", relation: orders, values: ["3"] },
      { kind: "ddl", searchPath: "public", command: "ALTER TABLE orders ADD COLUMN b int" },
      { kind: "insert", relation: orders2, values: ["4", "5"] },
      { kind: "insert", relation: orders, values: ["6"] },
      { kind: "insert", relation: orders2, values: ["7", "8"] },
    ];
    const buf = oneTransaction(changes);
    expect(decodeDataMessage(buf).chunks[0]?.changes).toEqual(changes);
    expect([orders, items, orders2].map((ref) => countSchemaRefs(buf, ref))).toEqual([1, 1, 1]);
  });

  it("encodes several transactions with header deltas, including time going backwards and xid wraparound", () => {
    const headers: TransactionHeader[] = [
      header(0x1_0000_0000n, { commitTimeMicros: T0, xid: 4_294_967_290 }),
      header(0x1_0000_0100n, { commitTimeMicros: T0 - 5_000n, xid: 4_294_967_295 }),
      header(0x1_0000_0101n, { commitTimeMicros: T0 + 1n, xid: 3 }),
      header(0xffff_ffff_ffff_fff0n, { commitTimeMicros: -1n, xid: 0 }),
      header(0xffff_ffff_ffff_ffffn, { commitTimeMicros: 2n ** 62n, xid: 2 }),
    ];
    const builder = new DataMessageBuilder(envelope, TEST_SESSION);
    for (const [i, h] of headers.entries()) {
      builder.beginTransaction(h);
      builder.addChange({ kind: "insert", relation: orders, values: [String(i)] });
    }
    expect(builder.transactionCount).toBe(5);
    const decoded = decodeDataMessage(builder.finish());
    expect(decoded.chunks.map((c) => c.header)).toEqual(headers);
    expect(decoded.chunks.map((c) => c.changes[0])).toEqual(
      headers.map((_, i) => ({ kind: "insert", relation: orders, values: [String(i)] })),
    );
  });

  it("restarts relation indexes and header deltas in each message", () => {
    const builder = new DataMessageBuilder(envelope, TEST_SESSION);
    builder.beginTransaction(header(1000n, { xid: 10 }));
    builder.addChange({ kind: "insert", relation: items, values: ["a"] });
    builder.addChange({ kind: "insert", relation: orders, values: ["b"] });
    const first = builder.finish();
    expect(builder.isEmpty()).toBe(true);
    expect(builder.byteLength).toBe(ENVELOPE_BYTES);
    builder.beginTransaction(header(2000n, { xid: 11, commitTimeMicros: T0 + 10n }));
    builder.addChange({ kind: "insert", relation: orders, values: ["c"] });
    const second = builder.finish();

    // Each message decodes on its own: it declares its relations and starts from absolute header values.
    const decoded = decodeDataMessage(second);
    expect(decoded.chunks).toEqual([
      {
        header: header(2000n, { xid: 11, commitTimeMicros: T0 + 10n }),
        changes: [{ kind: "insert", relation: orders, values: ["c"] }],
      },
    ]);
    expect(countSchemaRefs(second, orders)).toBe(1);
    expect(countSchemaRefs(second, items)).toBe(0);
    expect(
      decodeDataMessage(first).chunks[0]?.changes.map((c) => (c as { relation: SchemaRef }).relation),
    ).toEqual([items, orders]);
  });

  it("streams a large transaction as chunks, the last one marked final", () => {
    const builder = new DataMessageBuilder(envelope, TEST_SESSION);
    const base = header(5000n, { finalChunk: false });
    const messages: Buffer[] = [];
    let chunk = 0;
    builder.beginTransaction(base);
    for (let row = 0; row < 100; row++) {
      builder.addChange({ kind: "insert", relation: orders, values: [String(row), "x".repeat(100)] });
      if (builder.byteLength >= 1000) {
        messages.push(builder.finish());
        chunk++;
        builder.beginTransaction({ ...base, chunk });
      }
    }
    builder.markFinalChunk();
    builder.beginTransaction(header(6000n));
    builder.addChange({ kind: "delete", relation: orders, key: ["1"] });
    messages.push(builder.finish());

    const decoded = messages.map((m) => decodeDataMessage(m));
    expect(decoded.length).toBeGreaterThan(5);
    for (const m of decoded) expect(m.envelope).toEqual(envelope);
    const chunks = decoded.flatMap((m) => m.chunks);
    const big = chunks.filter((c) => c.header.commitLsn === 5000n);
    expect(big.map((c) => c.header.chunk)).toEqual(big.map((_, i) => i));
    expect(big.map((c) => c.header.finalChunk)).toEqual(big.map((_, i) => i === big.length - 1));
    const rows = big.flatMap((c) => c.changes).map((c) => (c as { values: ColumnValue[] }).values[0]);
    expect(rows).toEqual(Array.from({ length: 100 }, (_, i) => String(i)));
    expect(chunks.at(-1)).toEqual({
      header: header(6000n),
      changes: [{ kind: "delete", relation: orders, key: ["1"] }],
    });
  });

  it("allows a final chunk without changes, when the commit comes right after a cut", () => {
    const builder = new DataMessageBuilder(envelope, TEST_SESSION);
    const base = header(5000n, { finalChunk: false });
    builder.beginTransaction(base);
    builder.addChange({ kind: "insert", relation: orders, values: ["1"] });
    const first = builder.finish();
    builder.beginTransaction({ ...base, chunk: 1 });
    builder.markFinalChunk();
    const second = builder.finish();
    expect(decodeDataMessage(first).chunks[0]?.header).toEqual(base);
    expect(decodeDataMessage(second).chunks).toEqual([
      { header: { ...base, chunk: 1, finalChunk: true }, changes: [] },
    ]);
  });
});

describe("the example in docs/wire-format.md", () => {
  const example =
    "44 52 02 01 a3 cb c4 83 9f af f1 a9 00 01 23 45 67 89 ab cd ef 01 01 01 c8 ee ac 0b 80 f0 a7 ff e8 ed 93 " +
    "06 dc 0b 00 02 80 80 01 1a 2b 3c 4d 03 00 03 01 54 08 31 32 2e 35 30 00 01 01 c8 03 b8 17 02 00 04 00 01 " +
    "01 54 01 01 01 0e";
  /** The same message in version 1 (no capture session, text headers one lower), which consumers still read. */
  const exampleV1 =
    "44 52 01 01 a3 cb c4 83 9f af f1 a9 00 01 01 c8 ee ac 0b 80 f0 a7 ff e8 ed 93 06 dc 0b 00 02 80 80 01 1a 2b " +
    "3c 4d 03 00 03 01 54 07 31 32 2e 35 30 00 01 01 c8 03 b8 17 02 00 04 00 01 01 54 01 01 01 0e";
  const relation: SchemaRef = { relationId: 16384, version: 0x1a2b3c4d };
  const first = header(0x16b3748n, { commitTimeMicros: 1_732_518_000_000_000n, xid: 750 });
  const second = header(0x16b3748n + 456n, { commitTimeMicros: 1_732_518_000_001_500n, xid: 751 });
  const changes: [Change, Change] = [
    { kind: "insert", relation, values: ["42", "12.50", null] },
    { kind: "update", relation, key: ["42"], changedColumns: [1], values: ["7"] },
  ];

  it("is what the builder writes, byte for byte, and decodes as described", () => {
    const builder = new DataMessageBuilder(
      {
        sourceId: computeSourceId("7312345678901234567", "shop"),
        epoch: 0,
      },
      TEST_SESSION,
    );
    builder.beginTransaction(first);
    builder.addChange(changes[0]);
    builder.beginTransaction(second);
    builder.addChange(changes[1]);
    const buf = builder.finish();
    expect(buf.toString("hex").replace(/(..)(?!$)/g, "$1 ")).toBe(example);
    expect(decodeDataMessage(Buffer.from(example.replaceAll(" ", ""), "hex"))).toEqual({
      envelope: { sourceId: 0xa3cbc4839faff1a9n, epoch: 0 },
      session: TEST_SESSION,
      chunks: [
        { header: first, changes: [changes[0]] },
        { header: second, changes: [changes[1]] },
      ],
    });
  });

  it("is the same, byte for byte, when the builder is given the values as their UTF-8 bytes, as the capture does", () => {
    const bytes = (values: (string | null)[]) =>
      values.map((v) =>
        v === null ? null : new TextBytes(Buffer.from(`<${v}>`), 1, Buffer.byteLength(v) + 1),
      );
    const builder = new DataMessageBuilder(
      { sourceId: computeSourceId("7312345678901234567", "shop"), epoch: 0 },
      TEST_SESSION,
    );
    builder.beginTransaction(first);
    builder.addChange({ kind: "insert", relation, values: bytes(["42", "12.50", null]) });
    builder.beginTransaction(second);
    builder.addChange({
      kind: "update",
      relation,
      key: bytes(["42"]),
      changedColumns: [1],
      values: bytes(["7"]),
    });
    expect(
      builder
        .finish()
        .toString("hex")
        .replace(/(..)(?!$)/g, "$1 "),
    ).toBe(example);
  });

  it("gives an insert's text values as ranges of the message for the applier, its other values as text", () => {
    const long = `${"é".repeat(40)}🎉`;
    const buf = oneTransaction([
      { kind: "insert", relation: orders, values: ["42", "007", null, "", "-0", "a\tb", long] },
      { kind: "update", relation: orders, key: ["x"], changedColumns: [1], values: ["y"] },
      { kind: "delete", relation: orders, key: ["z"] },
    ]);
    const [insert, update, remove] =
      decodeDataMessage(buf, { insertValues: "bytes" }).chunks[0]?.changes ?? [];
    if (insert?.kind !== "insert") throw new Error("no insert decoded");
    // A canonical integer travels as a number and is made into its text; the rest point into the message.
    expect(insert.values.slice(0, 3)).toEqual(["42", expect.any(TextBytes), null]);
    for (const value of insert.values.slice(1)) if (value instanceof TextBytes) expect(value.buf).toBe(buf);
    expect(insert.values.map(valueText)).toEqual(["42", "007", null, "", "-0", "a\tb", long]);
    expect(update).toEqual({
      kind: "update",
      relation: orders,
      key: ["x"],
      changedColumns: [1],
      values: ["y"],
    });
    expect(remove).toEqual({ kind: "delete", relation: orders, key: ["z"] });
    expect(JSON.stringify(insert.values)).toBe(JSON.stringify(["42", "007", null, "", "-0", "a\tb", long]));
  });

  it("still decodes in version 1, without a capture session", () => {
    expect(decodeDataMessage(Buffer.from(exampleV1.replaceAll(" ", ""), "hex"))).toEqual({
      envelope: { sourceId: 0xa3cbc4839faff1a9n, epoch: 0 },
      session: null,
      chunks: [
        { header: first, changes: [changes[0]] },
        { header: second, changes: [changes[1]] },
      ],
    });
  });
});

describe("DataMessageBuilder rules", () => {
  it("reports its size and transaction count", () => {
    const builder = new DataMessageBuilder(envelope, TEST_SESSION);
    expect(builder.isEmpty()).toBe(true);
    expect(builder.transactionCount).toBe(0);
    expect(builder.byteLength).toBe(ENVELOPE_BYTES);
    builder.beginTransaction(header(1n));
    expect(builder.isEmpty()).toBe(false);
    builder.addChange({ kind: "insert", relation: orders, values: ["1"] });
    const message = builder.finish();
    expect(message.length).toBeGreaterThan(ENVELOPE_BYTES);
    expect(builder.transactionCount).toBe(0);
  });

  it("refuses a change outside a transaction and an empty message", () => {
    const builder = new DataMessageBuilder(envelope, TEST_SESSION);
    expect(() => builder.addChange({ kind: "ddl", searchPath: "", command: "x" })).toThrow(
      /beginTransaction/,
    );
    expect(() => builder.finish()).toThrow(/at least one transaction/);
    builder.beginTransaction(header(1n, { finalChunk: false }));
    builder.markFinalChunk();
    expect(() => builder.addChange({ kind: "ddl", searchPath: "", command: "x" })).toThrow(
      /beginTransaction/,
    );
  });

  it("refuses commit LSNs that do not increase, and new transactions not starting at chunk 0", () => {
    const builder = new DataMessageBuilder(envelope, TEST_SESSION);
    builder.beginTransaction(header(100n));
    expect(() => builder.beginTransaction(header(100n))).toThrow(/not after/);
    expect(() => builder.beginTransaction(header(99n))).toThrow(/not after/);
    expect(() => builder.beginTransaction(header(101n, { chunk: 1 }))).toThrow(/chunk 0/);
    builder.finish();
    expect(() => builder.beginTransaction(header(50n))).toThrow(/not after/);
  });

  it("makes a non-final chunk end its message and continue as the next chunk", () => {
    const builder = new DataMessageBuilder(envelope, TEST_SESSION);
    const base = header(100n, { finalChunk: false });
    builder.beginTransaction(base);
    expect(() => builder.beginTransaction(header(200n))).toThrow(/not final/);
    builder.finish();
    expect(() => builder.beginTransaction(header(200n))).toThrow(/continue it with chunk 1/);
    expect(() => builder.beginTransaction({ ...base, chunk: 2 })).toThrow(/continue it with chunk 1/);
    expect(() => builder.beginTransaction({ ...base, chunk: 1, xid: 5 })).toThrow(/continue it with chunk 1/);
    builder.beginTransaction({ ...base, chunk: 1 });
    builder.markFinalChunk();
    builder.beginTransaction(header(200n));
    expect(
      decodeDataMessage(builder.finish()).chunks.map((c) => [c.header.chunk, c.header.finalChunk]),
    ).toEqual([
      [1, true],
      [0, true],
    ]);
  });

  it("refuses invalid headers", () => {
    const builder = new DataMessageBuilder(envelope, TEST_SESSION);
    expect(() => builder.beginTransaction(header(-1n))).toThrow(RangeError);
    expect(() => builder.beginTransaction(header(2n ** 64n))).toThrow(RangeError);
    expect(() => builder.beginTransaction(header(1n, { xid: 2 ** 32 }))).toThrow(RangeError);
    expect(() => builder.beginTransaction(header(1n, { xid: -1 }))).toThrow(RangeError);
    expect(() => builder.beginTransaction(header(1n, { commitTimeMicros: 2n ** 63n }))).toThrow(RangeError);
    expect(() => builder.beginTransaction(header(1n, { chunk: -1 }))).toThrow(RangeError);
    builder.beginTransaction(header(1n, { commitTimeMicros: -(2n ** 63n) }));
    expect(() => builder.beginTransaction(header(2n, { commitTimeMicros: 2n ** 63n - 1n }))).toThrow(
      /too far/,
    );
    expect(builder.transactionCount).toBe(1);
  });

  it("leaves the message unchanged when a change is refused", () => {
    const builder = new DataMessageBuilder(envelope, TEST_SESSION);
    builder.beginTransaction(header(1n));
    builder.addChange({ kind: "insert", relation: orders, values: ["1"] });
    const before = builder.byteLength;
    const badVersion: SchemaRef = { relationId: 77, version: 2 ** 32 };
    expect(() => builder.addChange({ kind: "insert", relation: badVersion, values: ["1"] })).toThrow(
      RangeError,
    );
    expect(() =>
      builder.addChange({
        kind: "update",
        relation: items,
        key: ["1"],
        changedColumns: [2, 1],
        values: ["a", "b"],
      }),
    ).toThrow(/ascending/);
    expect(() =>
      builder.addChange({
        kind: "update",
        relation: items,
        key: ["1"],
        changedColumns: [1, 1],
        values: ["a", "b"],
      }),
    ).toThrow(/ascending/);
    expect(() =>
      builder.addChange({ kind: "update", relation: orders, key: ["1"], changedColumns: [1], values: [] }),
    ).toThrow(/1 changed columns but 0 values/);
    expect(() =>
      builder.addChange({
        kind: "truncate",
        relations: [items, badVersion],
        cascade: false,
        restartIdentity: false,
      }),
    ).toThrow(RangeError);
    expect(builder.byteLength).toBe(before);
    builder.addChange({ kind: "insert", relation: items, values: ["2"] });
    const decoded = decodeDataMessage(builder.finish());
    expect(decoded.chunks[0]?.changes).toEqual([
      { kind: "insert", relation: orders, values: ["1"] },
      { kind: "insert", relation: items, values: ["2"] },
    ]);
  });
});

describe("data message size", () => {
  it("spends at most 25 bytes on a one-column update of a 10-column row when deltas apply", () => {
    const accounts: SchemaRef = { relationId: 16_402, version: 0x5eed1234 };
    const builder = new DataMessageBuilder(envelope, TEST_SESSION);
    const lsn = 0x3_2a00_0000n;
    builder.beginTransaction(header(lsn, { commitTimeMicros: T0, xid: 734_000 }));
    builder.addChange({
      kind: "update",
      relation: accounts,
      key: ["184467"],
      changedColumns: [7],
      values: ["1042.17"],
    });
    const afterFirst = builder.byteLength;
    // The next commit: a few hundred bytes of WAL and a few milliseconds later.
    builder.beginTransaction(header(lsn + 312n, { commitTimeMicros: T0 + 2_750n, xid: 734_001 }));
    builder.addChange({
      kind: "update",
      relation: accounts,
      key: ["184468"],
      changedColumns: [7],
      values: ["87.50"],
    });
    const second = builder.byteLength - afterFirst;
    const first = afterFirst - ENVELOPE_BYTES;
    console.log(
      `wire size: envelope ${ENVELOPE_BYTES} B, first transaction ${first} B (absolute header + SCHEMA_REF), ` +
        `next transaction ${second} B (deltas)`,
    );
    expect(second).toBeLessThanOrEqual(25);
    expect(decodeDataMessage(builder.finish()).chunks).toHaveLength(2);
  });
});

describe("data message decoding errors", () => {
  const valid = handMade((w) => {
    txBegin(w, {});
    schemaRef(w, orders);
    w.u8(0x03);
    w.uvarint(0);
    w.uvarint(1);
    w.uvarint(0);
  });

  const TX = size((w) => txBegin(w, {}));
  const REF = size((w) => schemaRef(w, orders));

  function expectError(buf: Buffer, reason: WireFormatErrorReason, offset: number, text?: RegExp) {
    const error = decodeError(buf);
    expect(error.reason).toBe(reason);
    expect(error.offset).toBe(offset);
    expect(error.message).toContain(`at byte ${offset}`);
    if (text) expect(error.message).toMatch(text);
  }

  it("accepts the hand-made reference message", () => {
    expect(decodeDataMessage(valid).chunks[0]?.changes).toEqual([
      { kind: "insert", relation: orders, values: [null] },
    ]);
  });

  it("bad-magic", () => {
    const buf = Buffer.from(valid);
    buf[1] = 0x53;
    expectError(buf, "bad-magic", 0, /0x4453/);
    expectError(Buffer.from([0x44]), "bad-magic", 0);
    expectError(Buffer.alloc(0), "bad-magic", 0);
  });

  it("unsupported-version", () => {
    const buf = Buffer.from(valid);
    buf[2] = 3;
    expectError(buf, "unsupported-version", 2, /version 3 is not supported/);
  });

  it("unexpected-kind, and an undefined kind", () => {
    expectError(
      handMade(() => {}, MessageKind.schema),
      "unexpected-kind",
      3,
      /expected a data message, got a schema/,
    );
    expectError(
      handMade(() => {}, 9),
      "bad-value",
      3,
      /kind 9/,
    );
  });

  it("truncated", () => {
    expectError(valid.subarray(0, 8), "truncated", 4, /source id/);
    expectError(valid.subarray(0, ENVELOPE_BYTES + 3), "truncated", ENVELOPE_BYTES + 3, /commit time/);
    expectError(
      valid.subarray(0, ENVELOPE_BYTES + TX + 2),
      "truncated",
      ENVELOPE_BYTES + TX + 1,
      /relation id/,
    );
  });

  it("unknown-frame", () => {
    expectError(
      handMade((w) => w.u8(0x0a)),
      "unknown-frame",
      ENVELOPE_BYTES,
      /0x0a/,
    );
    expectError(
      handMade((w) => w.u8(0x00)),
      "unknown-frame",
      ENVELOPE_BYTES,
      /0x00/,
    );
    const trailing = Buffer.concat([valid, Buffer.from([0xff])]);
    expectError(trailing, "unknown-frame", valid.length, /0xff/);
  });

  it("bad-frame-order: a change before any TX_BEGIN", () => {
    const buf = handMade((w) => {
      schemaRef(w, orders);
      w.u8(0x05);
      w.uvarint(0);
      w.uvarint(0);
    });
    expectError(buf, "bad-frame-order", ENVELOPE_BYTES + REF, /before any TX_BEGIN/);
  });

  it("bad-frame-order: no TX_BEGIN at all", () => {
    expectError(
      handMade(() => {}),
      "bad-frame-order",
      ENVELOPE_BYTES,
      /no TX_BEGIN/,
    );
  });

  it("bad-frame-order: a TX_BEGIN after a non-final chunk, or a later transaction not at chunk 0", () => {
    const afterNonFinal = handMade((w) => {
      txBegin(w, { flags: 0 });
      txBegin(w, { lsn: 1n });
    });
    expectError(afterNonFinal, "bad-frame-order", ENVELOPE_BYTES + TX, /not final/);
    const laterChunk = handMade((w) => {
      txBegin(w, {});
      txBegin(w, { lsn: 1n, time: 0n, xid: 0, chunk: 3 });
    });
    // tag, flags, one-byte lsn, time and xid deltas, then the chunk
    expectError(laterChunk, "bad-frame-order", ENVELOPE_BYTES + TX + 5, /chunk 3/);
  });

  it("bad-reference: a relation index without SCHEMA_REF", () => {
    const buf = handMade((w) => {
      txBegin(w, {});
      schemaRef(w, orders);
      w.u8(0x03);
      w.uvarint(1);
      w.uvarint(0);
    });
    expectError(buf, "bad-reference", ENVELOPE_BYTES + TX + REF + 1, /relation index 1 is not declared/);
    const inTruncate = handMade((w) => {
      txBegin(w, {});
      w.u8(0x06);
      w.u8(0);
      w.uvarint(1);
      w.uvarint(0);
    });
    expectError(inTruncate, "bad-reference", ENVELOPE_BYTES + TX + 3);
  });

  it("bad-value: reserved flag bits", () => {
    expectError(
      handMade((w) => txBegin(w, { flags: 3 })),
      "bad-value",
      ENVELOPE_BYTES + 1,
      /reserved/,
    );
    const truncateFlags = handMade((w) => {
      txBegin(w, {});
      w.u8(0x06);
      w.u8(4);
      w.uvarint(0);
    });
    expectError(truncateFlags, "bad-value", ENVELOPE_BYTES + TX + 1, /reserved/);
  });

  it("bad-value: a zero commit-LSN delta, or header sums out of range", () => {
    const sameLsn = handMade((w) => {
      txBegin(w, {});
      txBegin(w, { lsn: 0n, time: 0n, xid: 0 });
    });
    expectError(sameLsn, "bad-value", ENVELOPE_BYTES + TX + 2, /delta is 0/);
    const lsnOverflow = handMade((w) => {
      txBegin(w, { lsn: 2n ** 64n - 1n });
      txBegin(w, { lsn: 1n, time: 0n, xid: 0 });
    });
    expectError(lsnOverflow, "bad-value", ENVELOPE_BYTES + TX + 9 + 2, /64 bits/);
    const negativeXid = handMade((w) => {
      txBegin(w, { xid: 5 });
      txBegin(w, { lsn: 1n, time: 0n, xid: -6 });
    });
    expectError(negativeXid, "bad-value", ENVELOPE_BYTES + TX + 4, /xid -1/);
    expectError(
      handMade((w) => txBegin(w, { xid: -1 })),
      "bad-value",
      ENVELOPE_BYTES + TX - 2,
      /xid -1/,
    );
    const timeOverflow = handMade((w) => {
      txBegin(w, { time: 2n ** 63n - 1n });
      txBegin(w, { lsn: 1n, time: 1n, xid: 0 });
    });
    // int64 max zigzags to 10 bytes where T0 takes 8
    expectError(timeOverflow, "bad-value", ENVELOPE_BYTES + TX + 2 + 3, /int64/);
  });

  it("bad-value: an overlong varint, a NULL sequence value, is_called out of range, a duplicate SCHEMA_REF", () => {
    const overlong = handMade((w) => {
      txBegin(w, {});
      w.u8(0x07);
      w.bytes(Buffer.from([0x80, 0x00]));
    });
    expectError(overlong, "bad-value", ENVELOPE_BYTES + TX + 1, /overlong/);
    const nullSequence = handMade((w) => {
      txBegin(w, {});
      w.u8(0x08);
      w.uvarint(1);
      w.string("s");
      w.string("n");
      w.uvarint(0);
      w.u8(1);
    });
    // tag, count, "s", "n"
    expectError(nullSequence, "bad-value", ENVELOPE_BYTES + TX + 6, /NULL/);
    const isCalled = handMade((w) => {
      txBegin(w, {});
      w.u8(0x08);
      w.uvarint(1);
      w.string("s");
      w.string("n");
      w.uvarint(1);
      w.svarint(5);
      w.u8(2);
    });
    expectError(isCalled, "bad-value", ENVELOPE_BYTES + TX + 8, /is_called is 2/);
    const twice = handMade((w) => {
      txBegin(w, {});
      schemaRef(w, orders);
      schemaRef(w, orders);
    });
    expectError(twice, "bad-value", ENVELOPE_BYTES + TX + REF, /declared twice/);
  });

  it("bad-value: invalid UTF-8 in a text value", () => {
    const buf = handMade((w) => {
      txBegin(w, {});
      schemaRef(w, orders);
      w.u8(0x03);
      w.uvarint(0);
      w.uvarint(1);
      w.uvarint(2 + 2);
      w.bytes(Buffer.from([0xe2, 0x82]));
    });
    expectError(buf, "bad-value", ENVELOPE_BYTES + TX + REF + 3, /UTF-8/);
  });
});

describe("corrupt messages", () => {
  const rich = (() => {
    const builder = new DataMessageBuilder(envelope, TEST_SESSION);
    builder.beginTransaction(header(0x2_0000_0000n, { xid: 4_294_967_000, finalChunk: false }));
    builder.markFinalChunk();
    builder.beginTransaction(header(0x2_0000_1000n, { commitTimeMicros: T0 - 77n }));
    builder.addChange({
      kind: "insert",
      relation: orders,
      values: ["1", null, "", "-0", "9223372036854775807", "é🎉"],
    });
    builder.addChange({
      kind: "update",
      relation: items,
      key: ["a"],
      changedColumns: [1, 300],
      values: ["b", null],
    });
    builder.addChange({ kind: "delete", relation: orders, key: ["-12"] });
    builder.addChange({ kind: "truncate", relations: [orders, items], cascade: true, restartIdentity: true });
    builder.addChange({ kind: "ddl", searchPath: "public", command: "CREATE TABLE t (a int)" });
    builder.addChange({
      kind: "sequence",
      sequences: [{ schema: "public", name: "s", lastValue: "42", isCalled: true }],
    });
    builder.beginTransaction(header(0x2_0000_2000n, { finalChunk: false }));
    builder.addChange({ kind: "insert", relation: items, values: ["x".repeat(200)] });
    return builder.finish();
  })();

  /**
   * Decoding either succeeds (a flipped byte inside text is still a message) or throws a WireFormatError;
   * the same message or the same refusal whether an insert's values are decoded as text or as bytes.
   */
  function decodesOrRefuses(buf: Buffer): "ok" | WireFormatErrorReason {
    let decoded: ReturnType<typeof decodeBothWays>;
    try {
      decoded = decodeBothWays(buf);
    } catch (error) {
      if (error instanceof WireFormatError) return decodeError(buf).reason;
      throw new Error(`not a WireFormatError for ${buf.toString("hex")}: ${String(error)}`);
    }
    if (!equalMessages(decoded.text, decoded.bytes)) {
      throw new Error(`decoded differently as bytes for ${buf.toString("hex")}`);
    }
    return "ok";
  }

  it("refuses every truncation of a valid message with a WireFormatError", () => {
    expect(decodesOrRefuses(rich)).toBe("ok");
    const reasons = new Set<string>();
    for (let length = 0; length < rich.length; length++) {
      const outcome = decodesOrRefuses(rich.subarray(0, length));
      reasons.add(outcome);
    }
    // Cutting exactly between frames leaves a shorter valid message; every other cut is refused.
    expect(
      [...reasons].every(
        (r) => r === "ok" || r === "truncated" || r === "bad-magic" || r === "bad-frame-order",
      ),
    ).toBe(true);
    expect(reasons.has("truncated")).toBe(true);
  });

  it("never throws anything but a WireFormatError for random byte flips and garbage", () => {
    let seed = 0x1234_5678;
    const random = () => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
    };
    const outcomes = new Map<string, number>();
    for (let i = 0; i < 20_000; i++) {
      const buf = Buffer.from(rich);
      const flips = 1 + Math.floor(random() * 4);
      for (let f = 0; f < flips; f++) {
        buf[Math.floor(random() * buf.length)] = Math.floor(random() * 256);
      }
      const cut = random() < 0.3 ? Math.floor(random() * buf.length) : buf.length;
      const outcome = decodesOrRefuses(buf.subarray(0, cut));
      outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
    }
    for (let i = 0; i < 5_000; i++) {
      const garbage = Buffer.alloc(1 + Math.floor(random() * 64));
      for (let j = 0; j < garbage.length; j++) garbage[j] = Math.floor(random() * 256);
      rich.copy(garbage, 0, 0, Math.min(ENVELOPE_BYTES, garbage.length));
      decodesOrRefuses(garbage);
    }
    console.log("byte-flip outcomes:", Object.fromEntries(outcomes));
    expect(outcomes.size).toBeGreaterThan(4);
  });
});

/** How many SCHEMA_REF frames for `ref` the message holds, found by their exact bytes. */
function countSchemaRefs(buf: Buffer, ref: SchemaRef): number {
  const w = new ByteWriter(16);
  schemaRef(w, ref);
  const pattern = w.toBuffer();
  let count = 0;
  for (let at = buf.indexOf(pattern); at !== -1; at = buf.indexOf(pattern, at + 1)) count++;
  return count;
}

/** Deep equality without expect's cost per call (the corruption tests decode 25,000 messages). */
function equalMessages(a: DecodedDataMessage, b: DecodedDataMessage): boolean {
  const text = (m: DecodedDataMessage) => JSON.stringify(m, (_, v) => (typeof v === "bigint" ? `${v}n` : v));
  return text(a) === text(b);
}
