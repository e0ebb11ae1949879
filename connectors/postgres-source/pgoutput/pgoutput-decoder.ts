import { constants } from "node:buffer";
import type { Lsn } from "../../../src/change/lsn.js";
import type { ReplicaIdentity } from "../../../src/change/relation-schema.js";
import { TextBytes } from "../../../src/change/text-bytes.js";
import { DiffrelayError } from "../../../src/errors/diffrelay-error.js";

/**
 * Decoder for pgoutput protocol version 1 ("Logical Replication Message
 * Formats" in the PostgreSQL docs). Values stay in PostgreSQL's text form:
 * nothing goes through type parsers, so microseconds, numeric digits and json
 * bytes survive exactly. decodePgoutput gives them as strings;
 * decodePgoutputBytes as ranges of their UTF-8 bytes in the message
 * (TextBytes), for the capture, which writes them into frames as they are.
 */

/** A column whose TOASTed value did not change; PostgreSQL does not send it (kind 'u'). */
export const UNCHANGED_TOAST: unique symbol = Symbol("diffrelay.unchangedToast");

/**
 * The hard limit of a value's text: V8's largest string (2^29 - 24 UTF-16
 * units on 64-bit Node), counted in UTF-8 bytes so that any value within it
 * decodes, here or in the applier, which reads values as strings. pgoutput's
 * text of a bytea is hex, twice its size plus 2.
 */
export const MAX_VALUE_BYTES = constants.MAX_STRING_LENGTH;

/** A value whose text is above the capture's limit: left undecoded, the capture refuses its row. */
export class OversizedValue {
  constructor(readonly bytes: number) {}
}

/** How a decoder gives a value's text: a string, or the range of its UTF-8 bytes in the message. */
export type ValueForm = string | TextBytes;

export type TupleValue<V extends ValueForm = string> = V | null | typeof UNCHANGED_TOAST | OversizedValue;

export interface BeginMessage {
  tag: "begin";
  /** LSN of the transaction's commit record. */
  finalLsn: Lsn;
  /** Microseconds since the Unix epoch. */
  commitTimeMicros: bigint;
  xid: number;
}

export interface CommitMessage {
  tag: "commit";
  flags: number;
  commitLsn: Lsn;
  /** End of the commit record: the position to confirm once the transaction is durable. */
  endLsn: Lsn;
  commitTimeMicros: bigint;
}

export interface OriginMessage {
  tag: "origin";
  originLsn: Lsn;
  name: string;
}

export interface RelationColumnInfo {
  name: string;
  typeOid: number;
  typeModifier: number;
  /** Part of the replica identity (every column under REPLICA IDENTITY FULL). */
  isKey: boolean;
}

export interface RelationMessage {
  tag: "relation";
  relationId: number;
  /** "pg_catalog" when PostgreSQL sends the empty namespace it uses for pg_catalog. */
  schema: string;
  table: string;
  replicaIdentity: ReplicaIdentity;
  columns: RelationColumnInfo[];
}

export interface TypeMessage {
  tag: "type";
  typeOid: number;
  schema: string;
  name: string;
}

export interface InsertMessage<V extends ValueForm = string> {
  tag: "insert";
  relationId: number;
  newTuple: TupleValue<V>[];
}

export interface UpdateMessage<V extends ValueForm = string> {
  tag: "update";
  relationId: number;
  /** "key": only replica identity columns are meaningful (others null); "old": the whole old row. */
  oldKind?: "key" | "old";
  oldTuple?: TupleValue<V>[];
  newTuple: TupleValue<V>[];
}

export interface DeleteMessage<V extends ValueForm = string> {
  tag: "delete";
  relationId: number;
  oldKind: "key" | "old";
  oldTuple: TupleValue<V>[];
}

export interface TruncateMessage {
  tag: "truncate";
  cascade: boolean;
  restartIdentity: boolean;
  relationIds: number[];
}

export interface LogicalMessage {
  tag: "message";
  transactional: boolean;
  lsn: Lsn;
  prefix: string;
  content: Buffer;
}

/** A decoded message; V is how its row values come (see ValueForm). */
export type PgoutputMessage<V extends ValueForm = string> =
  | BeginMessage
  | CommitMessage
  | OriginMessage
  | RelationMessage
  | TypeMessage
  | InsertMessage<V>
  | UpdateMessage<V>
  | DeleteMessage<V>
  | TruncateMessage
  | LogicalMessage;

export class PgoutputDecodeError extends DiffrelayError {
  override name = "PgoutputDecodeError";

  constructor(message: string, options?: { cause?: unknown }) {
    super("bad-frame", message, options);
  }
}

/** Microseconds between the Unix epoch and PostgreSQL's epoch, 2000-01-01 00:00:00 UTC. */
const PG_EPOCH_OFFSET_MICROS = 946_684_800_000_000n;

const TAG_BEGIN = 0x42; // B
const TAG_COMMIT = 0x43; // C
const TAG_ORIGIN = 0x4f; // O
const TAG_RELATION = 0x52; // R
const TAG_TYPE = 0x59; // Y
const TAG_INSERT = 0x49; // I
const TAG_UPDATE = 0x55; // U
const TAG_DELETE = 0x44; // D
const TAG_TRUNCATE = 0x54; // T
const TAG_MESSAGE = 0x4d; // M

const SUBMSG_NEW = 0x4e; // N
const SUBMSG_KEY = 0x4b; // K
const SUBMSG_OLD = 0x4f; // O

const KIND_NULL = 0x6e; // n
const KIND_UNCHANGED_TOAST = 0x75; // u
const KIND_TEXT = 0x74; // t
const KIND_BINARY = 0x62; // b

/**
 * Tags PostgreSQL defines for protocol versions above 1. Naming them makes the
 * error say what was received instead of only a byte value.
 */
const UNSUPPORTED_TAGS: Record<string, string> = {
  S: "Stream Start (protocol 2+)",
  E: "Stream Stop (protocol 2+)",
  c: "Stream Commit (protocol 2+)",
  A: "Stream Abort (protocol 2+)",
  b: "Begin Prepare (protocol 3+)",
  P: "Prepare (protocol 3+)",
  K: "Commit Prepared (protocol 3+)",
  r: "Rollback Prepared (protocol 3+)",
  p: "Stream Prepare (protocol 3+)",
};

function describeByte(byte: number): string {
  const printable = byte >= 0x20 && byte < 0x7f ? ` '${String.fromCharCode(byte)}'` : "";
  return `0x${byte.toString(16).padStart(2, "0")}${printable}`;
}

/**
 * A cursor over one message. Every read checks its bounds first, so a short
 * buffer fails with a message naming the offset instead of reading garbage.
 */
class Cursor<V extends ValueForm> {
  pos: number;

  constructor(
    readonly buf: Buffer,
    /** Where the message starts in buf (its tag byte); it runs to buf's end. Offsets in errors count from here. */
    readonly start: number,
    readonly tag: number,
    readonly maxValueBytes: number,
    /** Whether values come as ranges of buf (TextBytes) rather than strings. */
    readonly asBytes: boolean,
  ) {
    this.pos = start + 1;
  }

  need(bytes: number, what: string): void {
    if (this.pos + bytes > this.buf.length) {
      throw new PgoutputDecodeError(
        `pgoutput message ${describeByte(this.tag)} truncated: ${what} needs ${bytes} byte(s) at offset ${this.pos - this.start}, message has ${this.buf.length - this.start}`,
      );
    }
  }

  u8(what: string): number {
    this.need(1, what);
    const value = this.buf[this.pos] as number;
    this.pos += 1;
    return value;
  }

  i16(what: string): number {
    this.need(2, what);
    const value = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return value;
  }

  u32(what: string): number {
    this.need(4, what);
    const value = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return value;
  }

  i32(what: string): number {
    this.need(4, what);
    const value = this.buf.readInt32BE(this.pos);
    this.pos += 4;
    return value;
  }

  u64(what: string): bigint {
    this.need(8, what);
    const value = this.buf.readBigUInt64BE(this.pos);
    this.pos += 8;
    return value;
  }

  i64(what: string): bigint {
    this.need(8, what);
    const value = this.buf.readBigInt64BE(this.pos);
    this.pos += 8;
    return value;
  }

  /** A count (Int16 or Int32) that sizes an array, so it must not be negative. */
  count(bytes: 2 | 4, what: string): number {
    const value = bytes === 2 ? this.i16(what) : this.i32(what);
    if (value < 0) {
      throw new PgoutputDecodeError(`pgoutput message ${describeByte(this.tag)}: negative ${what} ${value}`);
    }
    return value;
  }

  /** A NUL-terminated string. */
  cstring(what: string): string {
    const end = this.buf.indexOf(0, this.pos);
    if (end < 0) {
      throw new PgoutputDecodeError(
        `pgoutput message ${describeByte(this.tag)} truncated: ${what} at offset ${this.pos - this.start} has no terminating NUL`,
      );
    }
    const value = this.buf.toString("utf8", this.pos, end);
    this.pos = end + 1;
    return value;
  }

  /** Microseconds since 2000-01-01, converted to microseconds since the Unix epoch. */
  timestamp(what: string): bigint {
    return this.i64(what) + PG_EPOCH_OFFSET_MICROS;
  }

  tuple(): TupleValue<V>[] {
    const count = this.count(2, "tuple column count");
    const values: TupleValue<V>[] = new Array(count);
    for (let i = 0; i < count; i++) {
      const kind = this.u8("column kind");
      if (kind === KIND_TEXT) {
        const length = this.count(4, "text value length");
        if (this.pos + length > this.buf.length) this.need(length, `text value of column ${i}`);
        const end = this.pos + length;
        values[i] =
          length > this.maxValueBytes
            ? new OversizedValue(length)
            : ((this.asBytes
                ? new TextBytes(this.buf, this.pos, end)
                : this.buf.toString("utf8", this.pos, end)) as V);
        this.pos += length;
      } else if (kind === KIND_NULL) {
        values[i] = null;
      } else if (kind === KIND_UNCHANGED_TOAST) {
        values[i] = UNCHANGED_TOAST;
      } else if (kind === KIND_BINARY) {
        throw new PgoutputDecodeError(
          `pgoutput message ${describeByte(this.tag)}: binary value for column ${i}, but binary transfer is never requested`,
        );
      } else {
        throw new PgoutputDecodeError(
          `pgoutput message ${describeByte(this.tag)}: unknown column kind ${describeByte(kind)} for column ${i}`,
        );
      }
    }
    return values;
  }

  end(): void {
    if (this.pos !== this.buf.length) {
      throw new PgoutputDecodeError(
        `pgoutput message ${describeByte(this.tag)}: ${this.buf.length - this.pos} unexpected trailing byte(s) at offset ${this.pos - this.start}`,
      );
    }
  }
}

function replicaIdentityOf(byte: number, tag: number): ReplicaIdentity {
  switch (byte) {
    case 0x64: // d
      return "default";
    case 0x66: // f
      return "full";
    case 0x69: // i
      return "index";
    case 0x6e: // n
      return "nothing";
    default:
      throw new PgoutputDecodeError(
        `pgoutput message ${describeByte(tag)}: unknown replica identity ${describeByte(byte)}`,
      );
  }
}

function oldKindOf(byte: number, tag: number): "key" | "old" {
  if (byte === SUBMSG_KEY) return "key";
  if (byte === SUBMSG_OLD) return "old";
  throw new PgoutputDecodeError(
    `pgoutput message ${describeByte(tag)}: expected 'K' or 'O' before the old tuple, got ${describeByte(byte)}`,
  );
}

function expectNew(c: Cursor<ValueForm>, byte: number): void {
  if (byte !== SUBMSG_NEW) {
    throw new PgoutputDecodeError(
      `pgoutput message ${describeByte(c.tag)}: expected 'N' before the new tuple, got ${describeByte(byte)}`,
    );
  }
}

function decodeBegin(c: Cursor<ValueForm>): BeginMessage {
  const finalLsn = c.u64("final LSN");
  const commitTimeMicros = c.timestamp("commit timestamp");
  const xid = c.u32("xid");
  return { tag: "begin", finalLsn, commitTimeMicros, xid };
}

function decodeCommit(c: Cursor<ValueForm>): CommitMessage {
  const flags = c.u8("flags");
  const commitLsn = c.u64("commit LSN");
  const endLsn = c.u64("end LSN");
  const commitTimeMicros = c.timestamp("commit timestamp");
  return { tag: "commit", flags, commitLsn, endLsn, commitTimeMicros };
}

function decodeOrigin(c: Cursor<ValueForm>): OriginMessage {
  const originLsn = c.u64("origin LSN");
  const name = c.cstring("origin name");
  return { tag: "origin", originLsn, name };
}

function decodeRelation(c: Cursor<ValueForm>): RelationMessage {
  const relationId = c.u32("relation OID");
  const namespace = c.cstring("namespace");
  const table = c.cstring("relation name");
  const replicaIdentity = replicaIdentityOf(c.u8("replica identity"), c.tag);
  const count = c.count(2, "column count");
  const columns: RelationColumnInfo[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const flags = c.u8("column flags");
    const name = c.cstring("column name");
    const typeOid = c.u32("column type OID");
    const typeModifier = c.i32("column type modifier");
    columns[i] = { name, typeOid, typeModifier, isKey: (flags & 1) === 1 };
  }
  return {
    tag: "relation",
    relationId,
    schema: namespace === "" ? "pg_catalog" : namespace,
    table,
    replicaIdentity,
    columns,
  };
}

function decodeType(c: Cursor<ValueForm>): TypeMessage {
  const typeOid = c.u32("type OID");
  const namespace = c.cstring("type namespace");
  const name = c.cstring("type name");
  return { tag: "type", typeOid, schema: namespace === "" ? "pg_catalog" : namespace, name };
}

function decodeInsert<V extends ValueForm>(c: Cursor<V>): InsertMessage<V> {
  const relationId = c.u32("relation OID");
  expectNew(c, c.u8("tuple marker"));
  return { tag: "insert", relationId, newTuple: c.tuple() };
}

function decodeUpdate<V extends ValueForm>(c: Cursor<V>): UpdateMessage<V> {
  const relationId = c.u32("relation OID");
  const marker = c.u8("tuple marker");
  if (marker === SUBMSG_NEW) return { tag: "update", relationId, newTuple: c.tuple() };
  const oldKind = oldKindOf(marker, c.tag);
  const oldTuple = c.tuple();
  expectNew(c, c.u8("new tuple marker"));
  return { tag: "update", relationId, oldKind, oldTuple, newTuple: c.tuple() };
}

function decodeDelete<V extends ValueForm>(c: Cursor<V>): DeleteMessage<V> {
  const relationId = c.u32("relation OID");
  const oldKind = oldKindOf(c.u8("tuple marker"), c.tag);
  return { tag: "delete", relationId, oldKind, oldTuple: c.tuple() };
}

function decodeTruncate(c: Cursor<ValueForm>): TruncateMessage {
  const count = c.count(4, "relation count");
  const options = c.u8("options");
  const relationIds: number[] = new Array(count);
  for (let i = 0; i < count; i++) relationIds[i] = c.u32("relation OID");
  return { tag: "truncate", cascade: (options & 1) !== 0, restartIdentity: (options & 2) !== 0, relationIds };
}

function decodeMessage(c: Cursor<ValueForm>): LogicalMessage {
  const flags = c.u8("flags");
  const lsn = c.u64("message LSN");
  const prefix = c.cstring("prefix");
  const length = c.count(4, "content length");
  c.need(length, "content");
  // A copy, so the message does not pin the socket's receive buffer it was sliced from.
  const content = Buffer.from(c.buf.subarray(c.pos, c.pos + length));
  c.pos += length;
  return { tag: "message", transactional: (flags & 1) !== 0, lsn, prefix, content };
}

/** Decodes one pgoutput v1 message (the payload of an XLogData frame); values above maxValueBytes stay undecoded. */
export function decodePgoutput(
  buf: Buffer,
  maxValueBytes: number = MAX_VALUE_BYTES,
): PgoutputMessage<string> {
  return decode<string>(buf, 0, maxValueBytes, false);
}

/**
 * decodePgoutput with each value as the range of its UTF-8 bytes in `buf`: no
 * copy and no string. The values are only as stable as buf's memory: a caller
 * whose buffer is reused (a socket's receive buffer) copies what it keeps.
 */
export function decodePgoutputBytes(
  buf: Buffer,
  maxValueBytes: number = MAX_VALUE_BYTES,
  start = 0,
): PgoutputMessage<TextBytes> {
  return decode<TextBytes>(buf, start, maxValueBytes, true);
}

/** The message from `start` to buf's end: a reader need not make a view of it (one allocation per message). */
function decode<V extends ValueForm>(
  buf: Buffer,
  start: number,
  maxValueBytes: number,
  asBytes: boolean,
): PgoutputMessage<V> {
  if (buf.length <= start) throw new PgoutputDecodeError("empty pgoutput message");
  const tag = buf[start] as number;
  const c = new Cursor<V>(buf, start, tag, Math.min(maxValueBytes, MAX_VALUE_BYTES), asBytes);
  let message: PgoutputMessage<V>;
  switch (tag) {
    case TAG_BEGIN:
      message = decodeBegin(c);
      break;
    case TAG_COMMIT:
      message = decodeCommit(c);
      break;
    case TAG_ORIGIN:
      message = decodeOrigin(c);
      break;
    case TAG_RELATION:
      message = decodeRelation(c);
      break;
    case TAG_TYPE:
      message = decodeType(c);
      break;
    case TAG_INSERT:
      message = decodeInsert(c);
      break;
    case TAG_UPDATE:
      message = decodeUpdate(c);
      break;
    case TAG_DELETE:
      message = decodeDelete(c);
      break;
    case TAG_TRUNCATE:
      message = decodeTruncate(c);
      break;
    case TAG_MESSAGE:
      message = decodeMessage(c);
      break;
    default: {
      const known = UNSUPPORTED_TAGS[String.fromCharCode(tag)];
      throw new PgoutputDecodeError(
        `unsupported pgoutput message tag ${describeByte(tag)}${known ? ` (${known}, never requested with proto_version 1)` : ""}`,
      );
    }
  }
  c.end();
  return message;
}
