import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { RelationSchema } from "../../../src/change/relation-schema.js";
import { ByteReader } from "../../../src/wire/byte-reader.js";
import { ByteWriter } from "../../../src/wire/byte-writer.js";
import { DataMessageBuilder } from "../../../src/wire/data-message.js";
import { computeSourceId, type Envelope, MessageKind, readEnvelope } from "../../../src/wire/envelope.js";
import { decodeSchemaMessage, encodeSchemaMessage, schemaVersion } from "../../../src/wire/schema-message.js";
import { WireFormatError, type WireFormatErrorReason } from "../../../src/wire/wire-format-error.js";
import { TEST_SESSION } from "../../support/capture-session-id.js";

const envelope: Envelope = { sourceId: computeSourceId("7312345678901234567", "shop"), epoch: 0 };
const ENVELOPE_BYTES = 13;

const orders: RelationSchema = {
  relationId: 16384,
  schema: "public",
  table: "orders",
  replicaIdentity: "default",
  columns: [
    { name: "id", typeOid: 20, typeName: "bigint", typeModifier: -1 },
    { name: "amount", typeOid: 1700, typeName: "numeric(12,2)", typeModifier: 786438 },
    { name: "note", typeOid: 25, typeName: "text", typeModifier: -1 },
    { name: "tenant", typeOid: 23, typeName: "integer", typeModifier: -1 },
  ],
  keyColumns: [3, 0],
  hasPrimaryKey: true,
};

const noKey: RelationSchema = {
  relationId: 16500,
  schema: "Ünïcode schema",
  table: "log 🎉",
  replicaIdentity: "full",
  columns: [
    { name: "at", typeOid: 1184, typeName: "timestamp with time zone", typeModifier: -1 },
    { name: "payload", typeOid: 3802, typeName: "jsonb", typeModifier: -1 },
  ],
  keyColumns: [0, 1],
  hasPrimaryKey: false,
};

function decodeError(buf: Buffer): WireFormatError {
  try {
    decodeSchemaMessage(buf);
  } catch (error) {
    if (error instanceof WireFormatError) return error;
    throw error;
  }
  throw new Error("the message decoded");
}

describe("computeSourceId", () => {
  it("is the first 8 bytes of SHA-256 of '<system identifier>/<database name>'", () => {
    const digest = createHash("sha256").update("7312345678901234567/shop").digest();
    expect(computeSourceId("7312345678901234567", "shop")).toBe(digest.readBigUInt64BE(0));
    expect(computeSourceId("7312345678901234567", "shop2")).not.toBe(
      computeSourceId("7312345678901234567", "shop"),
    );
  });
});

describe("envelope", () => {
  it("lays out magic, version, kind, source id and epoch", () => {
    const builder = new DataMessageBuilder({ sourceId: 0x0102030405060708n, epoch: 300 }, TEST_SESSION);
    builder.beginTransaction({ commitLsn: 1n, commitTimeMicros: 0n, xid: 1, chunk: 0, finalChunk: true });
    const buf = builder.finish();
    expect(buf.subarray(0, 14).toString("hex")).toBe(`445202010102030405060708ac02`);
    expect(readEnvelope(new ByteReader(buf), MessageKind.data)).toEqual({
      sourceId: 0x0102030405060708n,
      epoch: 300,
      version: 2,
    });
  });
});

describe("schema messages", () => {
  it.each([
    ["with a primary key", orders],
    ["without one, and with Unicode names", noKey],
    [
      "with no columns",
      { ...noKey, columns: [], keyColumns: [], replicaIdentity: "nothing" } as RelationSchema,
    ],
    ["with identity index", { ...orders, replicaIdentity: "index" } as RelationSchema],
  ])("round-trips a relation %s", (_name, schema) => {
    const encoded = encodeSchemaMessage(envelope, schema);
    expect(encoded.key).toBe(`${schema.relationId}:${encoded.version.toString(16).padStart(8, "0")}`);
    expect(encoded.version).toBe(schemaVersion(schema));
    const decoded = decodeSchemaMessage(encoded.value);
    expect(decoded).toEqual({ envelope, schema, version: encoded.version });
  });

  it("derives the version from the content only: same definition, same version, whatever the envelope", () => {
    const a = encodeSchemaMessage(envelope, orders);
    const b = encodeSchemaMessage({ sourceId: 1n, epoch: 9 }, structuredClone(orders));
    expect(b.version).toBe(a.version);
    expect(b.key).toBe(a.key);
    expect(b.value.subarray(ENVELOPE_BYTES)).toEqual(a.value.subarray(ENVELOPE_BYTES));
    const changes: RelationSchema[] = [
      { ...orders, relationId: 16385 },
      { ...orders, table: "orders2" },
      { ...orders, replicaIdentity: "full" },
      { ...orders, keyColumns: [0, 3] },
      { ...orders, columns: orders.columns.map((c, i) => (i === 1 ? { ...c, typeModifier: 786439 } : c)) },
    ];
    for (const changed of changes) expect(schemaVersion(changed)).not.toBe(a.version);
  });

  it("hashes exactly the documented fields: uvarint relation id, then everything after the version", () => {
    const { value, version } = encodeSchemaMessage(envelope, orders);
    const body = value.subarray(ENVELOPE_BYTES);
    // 16384 takes a 3-byte uvarint; the u32 version follows.
    expect(body.readUInt32BE(3)).toBe(version);
    const hashed = Buffer.concat([body.subarray(0, 3), body.subarray(7)]);
    expect(createHash("sha256").update(hashed).digest().readUInt32BE(0)).toBe(version);
  });

  it("refuses definitions that break the key rule or the field ranges", () => {
    expect(() => encodeSchemaMessage(envelope, { ...orders, keyColumns: [] })).toThrow(/at least one column/);
    expect(() => encodeSchemaMessage(envelope, { ...orders, keyColumns: [4] })).toThrow(
      /not one of 4 columns/,
    );
    expect(() => encodeSchemaMessage(envelope, { ...orders, keyColumns: [0, 0] })).toThrow(/twice/);
    expect(() => encodeSchemaMessage(envelope, { ...noKey, keyColumns: [1, 0] })).toThrow(
      /every column in order/,
    );
    expect(() => encodeSchemaMessage(envelope, { ...orders, relationId: 2 ** 32 })).toThrow(RangeError);
    expect(() =>
      encodeSchemaMessage(envelope, {
        ...orders,
        replicaIdentity: "bogus" as RelationSchema["replicaIdentity"],
      }),
    ).toThrow(RangeError);
    const badModifier = {
      ...orders,
      columns: [{ name: "x", typeOid: 1, typeName: "x", typeModifier: 2 ** 31 }],
    };
    expect(() => encodeSchemaMessage(envelope, { ...badModifier, keyColumns: [0] })).toThrow(/int32/);
  });

  describe("decoding errors", () => {
    const valid = encodeSchemaMessage(envelope, orders).value;
    const VERSION_AT = ENVELOPE_BYTES + 3;

    function expectError(buf: Buffer, reason: WireFormatErrorReason, offset: number, text?: RegExp) {
      const error = decodeError(buf);
      expect(error.reason).toBe(reason);
      expect(error.offset).toBe(offset);
      expect(error.message).toContain(`at byte ${offset}`);
      if (text) expect(error.message).toMatch(text);
    }

    /** The body of `orders` with `edit` applied and the version recomputed, so only the edit is wrong. */
    function rewritten(edit: (body: Buffer) => Buffer): Buffer {
      const body = edit(Buffer.from(valid.subarray(ENVELOPE_BYTES)));
      const hashed = Buffer.concat([body.subarray(0, 3), body.subarray(7)]);
      body.writeUInt32BE(createHash("sha256").update(hashed).digest().readUInt32BE(0), 3);
      return Buffer.concat([valid.subarray(0, ENVELOPE_BYTES), body]);
    }

    it("schema-version-mismatch", () => {
      const buf = Buffer.from(valid);
      buf[VERSION_AT] = (buf[VERSION_AT] as number) ^ 0xff;
      expectError(buf, "schema-version-mismatch", VERSION_AT, /not the content hash/);
      const renamed = Buffer.from(valid);
      const at = renamed.indexOf("orders");
      renamed[at] = 0x4f; // "O"
      expectError(renamed, "schema-version-mismatch", VERSION_AT);
    });

    it("trailing-bytes", () => {
      expectError(Buffer.concat([valid, Buffer.from([0])]), "trailing-bytes", valid.length, /1 bytes after/);
    });

    it("truncated, at every length", () => {
      for (let length = 0; length < valid.length; length++) {
        const error = decodeError(valid.subarray(0, length));
        expect(["truncated", "bad-magic"]).toContain(error.reason);
      }
    });

    it("unexpected-kind", () => {
      const data = new DataMessageBuilder(envelope, TEST_SESSION);
      data.beginTransaction({ commitLsn: 1n, commitTimeMicros: 0n, xid: 1, chunk: 0, finalChunk: true });
      expectError(data.finish(), "unexpected-kind", 3, /expected a schema message, got a data message/);
    });

    it("bad-value: replica identity, has-primary-key, key columns", () => {
      const identityAt = ENVELOPE_BYTES + 7 + 1 + "public".length + 1 + "orders".length;
      expectError(
        rewritten((b) => {
          b[identityAt - ENVELOPE_BYTES] = 0x78;
          return b;
        }),
        "bad-value",
        identityAt,
        /replica identity 0x78/,
      );
      expectError(
        rewritten((b) => {
          b[identityAt - ENVELOPE_BYTES + 1] = 2;
          return b;
        }),
        "bad-value",
        identityAt + 1,
        /has primary key is 2/,
      );
      const keyAt = valid.length - 3;
      expectError(
        rewritten((b) => {
          b[b.length - 1] = 3;
          return b;
        }),
        "bad-value",
        keyAt,
        /key column 3 appears twice/,
      );
      expectError(
        rewritten((b) => {
          b[b.length - 1] = 9;
          return b;
        }),
        "bad-value",
        keyAt,
        /not one of 4 columns/,
      );
    });

    it("bad-value: a type modifier beyond int32", () => {
      const w = new ByteWriter();
      w.svarint(2 ** 31);
      const modifier = w.toBuffer();
      const buf = rewritten((b) => {
        // The last column's modifier (-1, one byte "01") sits just before the key columns (3 bytes).
        const at = b.length - 4;
        return Buffer.concat([b.subarray(0, at), modifier, b.subarray(at + 1)]);
      });
      expectError(buf, "bad-value", valid.length - 4, /type modifier 2147483648 is not an int32/);
    });
  });
});

describe("corrupt schema messages", () => {
  it("never throw anything but a WireFormatError", () => {
    const valid = encodeSchemaMessage(envelope, noKey).value;
    let seed = 42;
    const random = () => {
      seed = (Math.imul(seed, 1_103_515_245) + 12_345) >>> 0;
      return seed / 4_294_967_296;
    };
    const reasons = new Set<string>();
    for (let i = 0; i < 5_000; i++) {
      const buf = Buffer.from(valid);
      buf[Math.floor(random() * buf.length)] = Math.floor(random() * 256);
      try {
        decodeSchemaMessage(buf);
        reasons.add("ok");
      } catch (error) {
        if (!(error instanceof WireFormatError)) throw error;
        reasons.add(error.reason);
      }
    }
    // Any flip in the hashed content is caught by the version check at the latest.
    expect(reasons).toContain("schema-version-mismatch");
    expect(reasons.size).toBeGreaterThan(3);
  });
});
