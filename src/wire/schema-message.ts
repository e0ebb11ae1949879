import { createHash } from "node:crypto";
import type { ColumnSchema, RelationSchema, ReplicaIdentity } from "../change/relation-schema.js";
import { ByteReader } from "./byte-reader.js";
import { ByteWriter, uvarintSize } from "./byte-writer.js";
import { type Envelope, MessageKind, readEnvelope, writeEnvelope } from "./envelope.js";
import { WireFormatError } from "./wire-format-error.js";

/** Schema messages (docs/wire-format.md, "Schema messages (kind 2)"). */

export interface EncodedSchemaMessage {
  /** The Kafka key on the compacted schema topic: "<relation id>:<version as 8 hex digits>". */
  key: string;
  value: Buffer;
  version: number;
}

export interface DecodedSchemaMessage {
  envelope: Envelope;
  schema: RelationSchema;
  version: number;
}

const MAX_U32 = 0xffff_ffff;
const MIN_I32 = -0x8000_0000;
const MAX_I32 = 0x7fff_ffff;

const IDENTITY_CODES: Record<ReplicaIdentity, number> = {
  default: 0x64, // "d"
  full: 0x66, // "f"
  index: 0x69, // "i"
  nothing: 0x6e, // "n"
};
const IDENTITY_BY_CODE = new Map<number, ReplicaIdentity>(
  Object.entries(IDENTITY_CODES).map(([identity, code]) => [code, identity as ReplicaIdentity]),
);

export function encodeSchemaMessage(envelope: Envelope, schema: RelationSchema): EncodedSchemaMessage {
  const content = encodeContent(schema);
  const version = versionOf(content);
  const relationIdSize = uvarintSize(schema.relationId);
  const w = new ByteWriter(content.length + 32);
  writeEnvelope(w, MessageKind.schema, envelope);
  w.bytes(content.subarray(0, relationIdSize));
  w.u32(version);
  w.bytes(content.subarray(relationIdSize));
  return { key: schemaKey(schema.relationId, version), value: w.toBuffer(), version };
}

/** The content hash that identifies this definition, the same on every run for the same definition. */
export function schemaVersion(schema: RelationSchema): number {
  return versionOf(encodeContent(schema));
}

export function schemaKey(relationId: number, version: number): string {
  return `${relationId}:${version.toString(16).padStart(8, "0")}`;
}

/** Decodes a schema message and refuses it unless its stored version is the hash of its content. */
export function decodeSchemaMessage(buf: Buffer): DecodedSchemaMessage {
  const r = new ByteReader(buf);
  // Schema messages are the same in versions 1 and 2.
  const { sourceId, epoch } = readEnvelope(r, MessageKind.schema);
  const envelope = { sourceId, epoch };
  const relationIdAt = r.offset;
  const relationId = r.uvarint("relation id", MAX_U32);
  const versionAt = r.offset;
  const version = r.u32("schema version");
  const restAt = r.offset;
  const schemaName = r.string("schema name");
  const table = r.string("table name");
  const identityAt = r.offset;
  const identityCode = r.u8("replica identity");
  const replicaIdentity = IDENTITY_BY_CODE.get(identityCode);
  if (replicaIdentity === undefined) {
    throw new WireFormatError("bad-value", identityAt, `replica identity 0x${identityCode.toString(16)}`);
  }
  const pkAt = r.offset;
  const pkByte = r.u8("has primary key");
  if (pkByte > 1) throw new WireFormatError("bad-value", pkAt, `has primary key is ${pkByte}, not 0 or 1`);
  const n = r.count("column count");
  const columns: ColumnSchema[] = [];
  for (let i = 0; i < n; i++) {
    const name = r.string("column name");
    const typeOid = r.uvarint("type oid", MAX_U32);
    const typeName = r.string("type name");
    const modifierAt = r.offset;
    const typeModifier = r.svarint("type modifier");
    if (typeModifier < MIN_I32 || typeModifier > MAX_I32) {
      throw new WireFormatError("bad-value", modifierAt, `type modifier ${typeModifier} is not an int32`);
    }
    columns.push({ name, typeOid, typeName, typeModifier });
  }
  const keyAt = r.offset;
  const k = r.count("key column count");
  const keyColumns: number[] = [];
  for (let i = 0; i < k; i++) keyColumns.push(r.uvarint("key column index", MAX_U32));
  if (r.remaining > 0) {
    throw new WireFormatError("trailing-bytes", r.offset, `${r.remaining} bytes after the key columns`);
  }
  const schema: RelationSchema = {
    relationId,
    schema: schemaName,
    table,
    replicaIdentity,
    columns,
    keyColumns,
    hasPrimaryKey: pkByte === 1,
  };
  const problem = keyProblem(schema);
  if (problem !== undefined) throw new WireFormatError("bad-value", keyAt, problem);

  const actual = createHash("sha256")
    .update(buf.subarray(relationIdAt, versionAt))
    .update(buf.subarray(restAt))
    .digest()
    .readUInt32BE(0);
  if (actual !== version) {
    throw new WireFormatError(
      "schema-version-mismatch",
      versionAt,
      `stored version ${hex8(version)} is not the content hash ${hex8(actual)}`,
    );
  }
  return { envelope, schema, version };
}

/** Every field of the message body except the version, in order: exactly what the version hashes. */
function encodeContent(schema: RelationSchema): Buffer {
  if (!(Number.isInteger(schema.relationId) && schema.relationId >= 0 && schema.relationId <= MAX_U32)) {
    throw new RangeError(`relation id ${schema.relationId} is not a u32`);
  }
  const identity = IDENTITY_CODES[schema.replicaIdentity];
  if (identity === undefined) throw new RangeError(`replica identity ${String(schema.replicaIdentity)}`);
  const problem = keyProblem(schema);
  if (problem !== undefined) throw new RangeError(`${schema.schema}.${schema.table}: ${problem}`);

  const w = new ByteWriter(256);
  w.uvarint(schema.relationId);
  w.string(schema.schema);
  w.string(schema.table);
  w.u8(identity);
  w.u8(schema.hasPrimaryKey ? 1 : 0);
  w.uvarint(schema.columns.length);
  for (const column of schema.columns) {
    if (!(Number.isInteger(column.typeOid) && column.typeOid >= 0 && column.typeOid <= MAX_U32)) {
      throw new RangeError(`column ${column.name}: type oid ${column.typeOid} is not a u32`);
    }
    if (
      !(
        Number.isInteger(column.typeModifier) &&
        column.typeModifier >= MIN_I32 &&
        column.typeModifier <= MAX_I32
      )
    ) {
      throw new RangeError(`column ${column.name}: type modifier ${column.typeModifier} is not an int32`);
    }
    w.string(column.name);
    w.uvarint(column.typeOid);
    w.string(column.typeName);
    w.svarint(column.typeModifier);
  }
  w.uvarint(schema.keyColumns.length);
  for (const index of schema.keyColumns) w.uvarint(index);
  return w.toBuffer();
}

function versionOf(content: Buffer): number {
  return createHash("sha256").update(content).digest().readUInt32BE(0);
}

/**
 * Why the key columns break the spec's rule, if they do: a primary key is a
 * non-empty set of distinct columns; without one, the key is every column in
 * column order.
 */
function keyProblem(schema: RelationSchema): string | undefined {
  const n = schema.columns.length;
  const keys = schema.keyColumns;
  if (!schema.hasPrimaryKey) {
    if (keys.length !== n || keys.some((index, position) => index !== position)) {
      return `without a primary key the key is every column in order, not [${keys.join(",")}]`;
    }
    return undefined;
  }
  if (keys.length === 0) return "a primary key needs at least one column";
  const seen = new Set<number>();
  for (const index of keys) {
    if (!(Number.isInteger(index) && index >= 0 && index < n))
      return `key column ${index} is not one of ${n} columns`;
    if (seen.has(index)) return `key column ${index} appears twice`;
    seen.add(index);
  }
  return undefined;
}

function hex8(value: number): string {
  return value.toString(16).padStart(8, "0");
}
