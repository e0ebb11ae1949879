import type {
  ApplyChange,
  Change,
  ColumnValue,
  JoinedSlot,
  SequencePosition,
  TransactionChunk,
  TransactionHeader,
  WritableValue,
} from "../change/change-model.js";
import type { SchemaRef } from "../change/relation-schema.js";
import { ByteReader } from "./byte-reader.js";
import { ByteWriter } from "./byte-writer.js";
import {
  type Envelope,
  MessageKind,
  readEnvelope,
  type WireFormatVersion,
  writeEnvelope,
} from "./envelope.js";
import { JOINED_VALUE, readValue, writeJoinedValue, writeValue } from "./value-codec.js";
import { WireFormatError } from "./wire-format-error.js";

/** Data messages (docs/wire-format.md, "Data messages (kind 1)"). */

const Tag = {
  txBegin: 0x01,
  schemaRef: 0x02,
  insert: 0x03,
  update: 0x04,
  delete: 0x05,
  truncate: 0x06,
  ddl: 0x07,
  sequences: 0x08,
  valuePart: 0x09,
} as const;

const TX_FINAL_CHUNK = 0x01;
const VALUE_PART_LAST = 0x01;
const TRUNCATE_CASCADE = 0x01;
const TRUNCATE_RESTART_IDENTITY = 0x02;

const MAX_U32 = 0xffff_ffff;
const MAX_U64 = 0xffff_ffff_ffff_ffffn;
const MIN_I64 = -(1n << 63n);
const MAX_I64 = (1n << 63n) - 1n;
/** Column indexes are bounded so that index arithmetic stays exact; PostgreSQL allows 1664. */
const MAX_COLUMN_INDEX = 0x7fff_ffff;

/**
 * Which capture session wrote a message (format version 2): a random id per
 * capture process start, and a counter of its replication sessions from 1.
 * A consumer uses it to tell a stale session's late messages from the
 * current session's.
 */
export interface CaptureSessionId {
  captureId: bigint;
  session: number;
}

export interface DecodedDataMessage<C extends ApplyChange = Change> {
  envelope: Envelope;
  /** null for a version 1 message. */
  session: CaptureSessionId | null;
  chunks: TransactionChunk<C>[];
}

/** How a decoded message holds an insert's text values. */
export interface DecodeOptions {
  /** As ranges of the message's bytes (TextBytes), never decoded: for COPY. */
  insertValues: "bytes";
}

/** Bytes a VALUE_PART frame adds to its piece, at most: tag, flags, a uvarint length. */
export const VALUE_PART_OVERHEAD_BYTES = 1 + 1 + 5;

/** A frame's values in the order it writes them, which is the order joined positions count in. */
export function valuesInFrameOrder<V extends WritableValue>(change: Change<V>): readonly V[] {
  switch (change.kind) {
    case "insert":
      return change.values;
    case "update":
      return change.key.length === 0 ? change.values : [...change.key, ...change.values];
    case "delete":
      return change.key;
    default:
      return [];
  }
}

/** Most bytes one value takes on the wire: a 5-byte header at most, then its UTF-8. */
export function valueByteBound(value: WritableValue): number {
  if (value === null) return 1;
  return 5 + (typeof value === "string" ? Buffer.byteLength(value, "utf8") : value.end - value.start);
}

/**
 * Most bytes the change's frame takes, with the values at `joined` positions
 * written as joined, including the SCHEMA_REF frames it may declare.
 */
export function changeByteBound(
  change: Change<WritableValue>,
  joined: ReadonlySet<number> = NONE_JOINED,
): number {
  const SCHEMA_REF_BOUND = 1 + 5 + 4;
  const FRAME_BOUND = 1 + 5 + 5 + 5;
  switch (change.kind) {
    case "insert":
    case "update":
    case "delete": {
      // In frame order (valuesInFrameOrder), without building that array: this runs for every change.
      const first = change.kind === "insert" ? change.values : change.key;
      const second = change.kind === "update" ? change.values : NO_VALUES;
      return (
        FRAME_BOUND +
        SCHEMA_REF_BOUND +
        valuesByteBound(first, 0, joined) +
        valuesByteBound(second, first.length, joined)
      );
    }
    case "truncate":
      return FRAME_BOUND + change.relations.length * (5 + SCHEMA_REF_BOUND);
    case "ddl":
      return FRAME_BOUND + Buffer.byteLength(change.searchPath) + Buffer.byteLength(change.command);
    case "sequence":
      return (
        FRAME_BOUND +
        change.sequences.reduce(
          (sum, q) => sum + 16 + Buffer.byteLength(q.schema) + Buffer.byteLength(q.name) + q.lastValue.length,
          0,
        )
      );
  }
}

const NO_VALUES: readonly WritableValue[] = [];

/** Bytes of `values` (at frame positions from firstPosition on) with an update's column deltas, at most. */
function valuesByteBound(
  values: readonly WritableValue[],
  firstPosition: number,
  joined: ReadonlySet<number>,
): number {
  let bytes = 0;
  for (let i = 0; i < values.length; i++) {
    // An update's column delta as well; a joined value keeps a 1-byte header.
    bytes += 5 + (joined.has(firstPosition + i) ? 1 : valueByteBound(values[i] as WritableValue));
  }
  return bytes;
}

/**
 * Encodes a stream of transactions into data messages, one message at a time.
 *
 * Usage by the capture, which sees a transaction's changes one by one and only
 * learns at its commit whether the chunk it is writing is the last one:
 *
 *     builder.beginTransaction({ ...header, chunk: 0, finalChunk: false });
 *     for each change:
 *       builder.addChange(change);
 *       if (builder.byteLength >= limit) {
 *         publish(builder.finish());             // this chunk stays non-final
 *         builder.beginTransaction({ ...header, chunk: ++chunk, finalChunk: false });
 *       }
 *     builder.markFinalChunk();                  // at the commit: this chunk is the last
 *
 * The last chunk may then hold no change at all, which the format allows.
 *     ... more transactions, then publish(builder.finish())
 *
 * A caller that knows up front that a chunk is the last one may pass
 * finalChunk: true instead of calling markFinalChunk().
 *
 * The builder enforces the spec's ordering rules as it goes (commit LSNs
 * increase, a non-final chunk ends its message and continues as chunk+1 at the
 * start of the next one), and a call that throws leaves the message as it was.
 */
export class DataMessageBuilder {
  private readonly writer = new ByteWriter();
  private readonly envelope: Envelope;
  private readonly session: CaptureSessionId;

  /** Per message: relation id → index of its latest SCHEMA_REF. */
  private readonly refIndexByRelation = new Map<number, number>();
  private refRelations: number[] = [];
  private refVersions: number[] = [];
  /** Per message: header of the previous TX_BEGIN, the base for deltas. */
  private previousInMessage: TransactionHeader | undefined;
  private chunksInMessage = 0;

  /** Across messages: the last transaction begun, and whether its chunk is marked final. */
  private last: TransactionHeader | undefined;
  private lastFinal = true;
  /** Offset of the last TX_BEGIN's flags byte, patched by markFinalChunk(). */
  private flagsOffset = 0;
  /** Whether addChange() has a transaction to add to. */
  private open = false;

  constructor(envelope: Envelope, session: CaptureSessionId) {
    this.envelope = { sourceId: envelope.sourceId, epoch: envelope.epoch };
    if (!(Number.isSafeInteger(session.session) && session.session >= 0)) {
      throw new RangeError(`session ${session.session} is not a non-negative integer`);
    }
    this.session = { ...session };
    this.writeHeader();
  }

  private writeHeader(): void {
    writeEnvelope(this.writer, MessageKind.data, this.envelope);
    this.writer.u64(this.session.captureId);
    this.writer.uvarint(this.session.session);
  }

  /** Size of the message so far, envelope included. */
  get byteLength(): number {
    return this.writer.length;
  }

  /** Transactions (or chunks of one) begun in the current message. */
  get transactionCount(): number {
    return this.chunksInMessage;
  }

  isEmpty(): boolean {
    return this.chunksInMessage === 0;
  }

  /**
   * Starts a transaction, or the next chunk of the one the previous message
   * ended in. Ends the previous transaction of this message, which must have
   * been marked final.
   */
  beginTransaction(header: TransactionHeader): void {
    checkHeader(header);
    const last = this.last;
    if (last !== undefined && !this.lastFinal) {
      if (this.chunksInMessage > 0) {
        throw new Error(
          `chunk ${last.chunk} of the transaction committed at LSN ${last.commitLsn} is not final, ` +
            "so it must end its message: call markFinalChunk() or finish() first",
        );
      }
      if (
        header.commitLsn !== last.commitLsn ||
        header.chunk !== last.chunk + 1 ||
        header.xid !== last.xid ||
        header.commitTimeMicros !== last.commitTimeMicros
      ) {
        throw new Error(
          `the previous message ended in chunk ${last.chunk} of the transaction committed at LSN ` +
            `${last.commitLsn}; the next message must continue it with chunk ${last.chunk + 1}`,
        );
      }
    } else if (last !== undefined) {
      if (header.commitLsn <= last.commitLsn) {
        throw new Error(`commit LSN ${header.commitLsn} is not after the previous one, ${last.commitLsn}`);
      }
      if (header.chunk !== 0) {
        throw new Error(`a new transaction starts at chunk 0, not ${header.chunk}`);
      }
    }

    const previous = this.previousInMessage;
    const timeDelta =
      previous === undefined ? header.commitTimeMicros : header.commitTimeMicros - previous.commitTimeMicros;
    if (timeDelta < MIN_I64 || timeDelta > MAX_I64) {
      throw new RangeError(`commit time ${header.commitTimeMicros} is too far from the previous commit's`);
    }
    this.atomically(() => {
      const w = this.writer;
      w.u8(Tag.txBegin);
      this.flagsOffset = w.length;
      w.u8(header.finalChunk ? TX_FINAL_CHUNK : 0);
      w.uvarintBig(previous === undefined ? header.commitLsn : header.commitLsn - previous.commitLsn);
      w.svarintBig(timeDelta);
      w.svarint(previous === undefined ? header.xid : header.xid - previous.xid);
      w.uvarint(header.chunk);
    });
    this.last = { ...header };
    this.lastFinal = header.finalChunk;
    this.previousInMessage = this.last;
    this.chunksInMessage++;
    this.open = true;
  }

  /** Marks the open transaction's chunk as its final one; changes can no longer be added to it. */
  markFinalChunk(): void {
    this.requireOpen();
    this.writer.patchU8(this.flagsOffset, TX_FINAL_CHUNK);
    this.lastFinal = true;
    this.open = false;
  }

  /**
   * Adds a change. The values whose positions are in `joined` (positions in
   * the order the frame writes values: an UPDATE's key first, then its changed
   * values) are written as joined: their text must have gone out before, as
   * VALUE_PART frames of this transaction, in the same order.
   */
  addChange(change: Change<WritableValue>, joined?: ReadonlySet<number>): void {
    this.requireOpen();
    this.atomically(() => this.writeChange(change, joined));
  }

  /** Adds a piece of the UTF-8 text of a value too large for one message; `last` completes the value. */
  addValuePart(bytes: Uint8Array, last: boolean): void {
    this.requireOpen();
    if (bytes.length === 0) throw new RangeError("a value part holds at least one byte");
    this.atomically(() => {
      const w = this.writer;
      w.u8(Tag.valuePart);
      w.u8(last ? VALUE_PART_LAST : 0);
      w.uvarint(bytes.length);
      w.bytes(bytes);
    });
  }

  /**
   * Returns the message and starts the next one. A transaction still open
   * stays non-final unless it was begun with finalChunk: true; the next
   * message must then begin with its next chunk.
   */
  finish(): Buffer {
    if (this.chunksInMessage === 0) throw new Error("a data message needs at least one transaction");
    const message = this.writer.toBuffer();
    this.writer.reset();
    this.writeHeader();
    this.refIndexByRelation.clear();
    this.refRelations = [];
    this.refVersions = [];
    this.previousInMessage = undefined;
    this.chunksInMessage = 0;
    this.open = false;
    return message;
  }

  private requireOpen(): void {
    if (!this.open) throw new Error("no open transaction: call beginTransaction() first");
  }

  /** Runs `write`; if it throws, removes whatever it wrote, so the message stays valid. */
  private atomically(write: () => void): void {
    const mark = this.writer.length;
    const refs = this.refRelations.length;
    try {
      write();
    } catch (error) {
      this.writer.truncate(mark);
      if (this.refRelations.length > refs) {
        this.refRelations.length = refs;
        this.refVersions.length = refs;
        this.refIndexByRelation.clear();
        this.refRelations.forEach((relationId, index) => {
          this.refIndexByRelation.set(relationId, index);
        });
      }
      throw error;
    }
  }

  private writeChange(change: Change<WritableValue>, joined: ReadonlySet<number> = NONE_JOINED): void {
    const w = this.writer;
    switch (change.kind) {
      case "insert": {
        const index = this.relationIndex(change.relation);
        w.u8(Tag.insert);
        w.uvarint(index);
        writeValues(w, change.values, joined, 0);
        return;
      }
      case "update": {
        const { changedColumns, values } = change;
        if (changedColumns.length !== values.length) {
          throw new RangeError(
            `update has ${changedColumns.length} changed columns but ${values.length} values`,
          );
        }
        const index = this.relationIndex(change.relation);
        w.u8(Tag.update);
        w.uvarint(index);
        writeValues(w, change.key, joined, 0);
        w.uvarint(changedColumns.length);
        let next = 0;
        for (let i = 0; i < changedColumns.length; i++) {
          const column = changedColumns[i] as number;
          if (!(Number.isInteger(column) && column >= next && column <= MAX_COLUMN_INDEX)) {
            throw new RangeError(
              `changed columns must be ascending column indexes: ${changedColumns.join(",")}`,
            );
          }
          w.uvarint(column - next);
          writeValueAt(w, values[i] as WritableValue, joined, change.key.length + i);
          next = column + 1;
        }
        return;
      }
      case "delete": {
        const index = this.relationIndex(change.relation);
        w.u8(Tag.delete);
        w.uvarint(index);
        writeValues(w, change.key, joined, 0);
        return;
      }
      case "truncate": {
        const indexes = change.relations.map((relation) => this.relationIndex(relation));
        w.u8(Tag.truncate);
        w.u8(
          (change.cascade ? TRUNCATE_CASCADE : 0) | (change.restartIdentity ? TRUNCATE_RESTART_IDENTITY : 0),
        );
        w.uvarint(indexes.length);
        for (const index of indexes) w.uvarint(index);
        return;
      }
      case "ddl":
        w.u8(Tag.ddl);
        w.string(change.searchPath);
        w.string(change.command);
        return;
      case "sequence":
        w.u8(Tag.sequences);
        w.uvarint(change.sequences.length);
        for (const sequence of change.sequences) writeSequence(w, sequence);
        return;
      default:
        throw new TypeError(`unknown change kind ${(change as { kind: unknown }).kind}`);
    }
  }

  /** The message-local index of `ref`, declaring it with a SCHEMA_REF frame on first use. */
  private relationIndex(ref: SchemaRef): number {
    const known = this.refIndexByRelation.get(ref.relationId);
    if (known !== undefined && this.refVersions[known] === ref.version) return known;
    // A relation can appear in two versions in one message when DDL changed it in between.
    for (let index = 0; index < this.refRelations.length; index++) {
      if (this.refRelations[index] === ref.relationId && this.refVersions[index] === ref.version) {
        this.refIndexByRelation.set(ref.relationId, index);
        return index;
      }
    }
    if (!(Number.isInteger(ref.relationId) && ref.relationId >= 0 && ref.relationId <= MAX_U32)) {
      throw new RangeError(`relation id ${ref.relationId} is not a u32`);
    }
    const w = this.writer;
    w.u8(Tag.schemaRef);
    w.uvarint(ref.relationId);
    w.u32(ref.version);
    const index = this.refRelations.length;
    this.refRelations.push(ref.relationId);
    this.refVersions.push(ref.version);
    this.refIndexByRelation.set(ref.relationId, index);
    return index;
  }
}

function checkHeader(header: TransactionHeader): void {
  if (header.commitLsn < 0n || header.commitLsn > MAX_U64) {
    throw new RangeError(`commit LSN ${header.commitLsn} is not a u64`);
  }
  if (header.commitTimeMicros < MIN_I64 || header.commitTimeMicros > MAX_I64) {
    throw new RangeError(`commit time ${header.commitTimeMicros} is not an int64`);
  }
  if (!(Number.isInteger(header.xid) && header.xid >= 0 && header.xid <= MAX_U32)) {
    throw new RangeError(`xid ${header.xid} is not a u32`);
  }
  if (!(Number.isSafeInteger(header.chunk) && header.chunk >= 0)) {
    throw new RangeError(`chunk ${header.chunk} is not a non-negative integer`);
  }
}

const NONE_JOINED: ReadonlySet<number> = new Set();

function writeValues(
  w: ByteWriter,
  values: readonly WritableValue[],
  joined: ReadonlySet<number>,
  firstPosition: number,
): void {
  w.uvarint(values.length);
  for (let i = 0; i < values.length; i++)
    writeValueAt(w, values[i] as WritableValue, joined, firstPosition + i);
}

function writeValueAt(
  w: ByteWriter,
  value: WritableValue,
  joined: ReadonlySet<number>,
  position: number,
): void {
  if (!joined.has(position)) {
    writeValue(w, value);
    return;
  }
  if (value === null) throw new RangeError(`value ${position} is NULL and cannot be joined from parts`);
  writeJoinedValue(w);
}

function writeSequence(w: ByteWriter, sequence: SequencePosition): void {
  if (typeof sequence.lastValue !== "string") {
    throw new TypeError(`sequence ${sequence.schema}.${sequence.name} has no last value`);
  }
  w.string(sequence.schema);
  w.string(sequence.name);
  writeValue(w, sequence.lastValue);
  w.u8(sequence.isCalled ? 1 : 0);
}

/**
 * Decodes and validates a whole data message: any deviation from the spec
 * throws a WireFormatError, never another error, so a consumer can tell a
 * corrupt or foreign message from its own bugs. Its values are text, or with
 * `insertValues: "bytes"` an insert's are the message's bytes (equally checked
 * as UTF-8); the message's buffer must then not be reused while they live.
 */
export function decodeDataMessage(buf: Buffer): DecodedDataMessage;
export function decodeDataMessage(buf: Buffer, options: DecodeOptions): DecodedDataMessage<ApplyChange>;
export function decodeDataMessage(buf: Buffer, options?: DecodeOptions): DecodedDataMessage<ApplyChange> {
  const insertBytes = options?.insertValues === "bytes";
  const r = new ByteReader(buf);
  const { version, sourceId, epoch } = readEnvelope(r, MessageKind.data);
  const envelope = { sourceId, epoch };
  const session =
    version === 1 ? null : { captureId: r.u64("capture id"), session: r.uvarint("capture session") };
  const refs: SchemaRef[] = [];
  const declared = new Set<string>();
  const chunks: TransactionChunk<ApplyChange>[] = [];
  let current: TransactionChunk<ApplyChange> | undefined;

  while (r.remaining > 0) {
    const frameAt = r.offset;
    const tag = r.u8("frame tag");
    if (tag === Tag.txBegin) {
      current = readTxBegin(r, frameAt, current);
      chunks.push(current);
      continue;
    }
    if (tag === Tag.schemaRef) {
      const relationId = r.uvarint("relation id", MAX_U32);
      const version = r.u32("schema version");
      const key = `${relationId}:${version}`;
      if (declared.has(key)) {
        throw new WireFormatError("bad-value", frameAt, `SCHEMA_REF ${key} declared twice in one message`);
      }
      declared.add(key);
      refs.push(Object.freeze({ relationId, version }));
      continue;
    }
    const lastTag = version === 1 ? Tag.sequences : Tag.valuePart;
    if (tag < Tag.insert || tag > lastTag) {
      throw new WireFormatError("unknown-frame", frameAt, `frame tag 0x${tag.toString(16).padStart(2, "0")}`);
    }
    if (current === undefined) {
      throw new WireFormatError("bad-frame-order", frameAt, "a change comes before any TX_BEGIN");
    }
    if (tag === Tag.valuePart) {
      readValuePart(r, current);
      continue;
    }
    const values = new ValueSlots(version, current);
    current.changes.push(readChange(r, tag, refs, values, insertBytes));
  }
  if (chunks.length === 0) {
    throw new WireFormatError("bad-frame-order", r.offset, "data message holds no TX_BEGIN");
  }
  return { envelope, session, chunks };
}

function readValuePart(r: ByteReader, chunk: TransactionChunk<ApplyChange>): void {
  const flagsAt = r.offset;
  const flags = r.u8("value part flags");
  if ((flags & ~VALUE_PART_LAST) !== 0) {
    throw new WireFormatError(
      "bad-value",
      flagsAt,
      `value part flags 0x${flags.toString(16)} set reserved bits`,
    );
  }
  const lengthAt = r.offset;
  const length = r.count("value part length");
  if (length === 0) throw new WireFormatError("bad-value", lengthAt, "a value part holds no byte");
  chunk.valueParts ??= [];
  chunk.valueParts.push({
    beforeChange: chunk.changes.length,
    bytes: r.bytes(length, "value part"),
    last: (flags & VALUE_PART_LAST) !== 0,
  });
}

/** Reads the values of one change frame, recording which of them are joined from value parts. */
class ValueSlots {
  constructor(
    private readonly version: WireFormatVersion,
    private readonly chunk: TransactionChunk<ApplyChange>,
  ) {}

  read(r: ByteReader, what: string, field: JoinedSlot["field"]): ColumnValue[] {
    const n = r.count(what);
    const values: ColumnValue[] = new Array(n);
    for (let i = 0; i < n; i++) values[i] = this.one(r, field, i);
    return values;
  }

  /** An insert's values, text ones as the message's bytes. */
  readBytes(r: ByteReader): WritableValue[] {
    const n = r.count("column count");
    const values: WritableValue[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const value = readValue(r, this.version, "bytes");
      values[i] = value === JOINED_VALUE ? this.joined("values", i) : value;
    }
    return values;
  }

  one(r: ByteReader, field: JoinedSlot["field"], index: number): ColumnValue {
    const value = readValue(r, this.version);
    return value === JOINED_VALUE ? this.joined(field, index) : value;
  }

  /** Records a value the consumer joins from value parts; null stands for it until then. */
  private joined(field: JoinedSlot["field"], index: number): null {
    this.chunk.joined ??= [];
    this.chunk.joined.push({ change: this.chunk.changes.length, field, index });
    return null;
  }

  /** A value that is never joined (a sequence position). */
  plain(r: ByteReader, what: string): ColumnValue {
    const at = r.offset;
    const value = readValue(r, this.version);
    if (value === JOINED_VALUE)
      throw new WireFormatError("bad-value", at, `${what} cannot be a joined value`);
    return value;
  }
}

function readTxBegin(
  r: ByteReader,
  frameAt: number,
  previous: TransactionChunk<ApplyChange> | undefined,
): TransactionChunk<ApplyChange> {
  const flagsAt = r.offset;
  const flags = r.u8("transaction flags");
  if ((flags & ~TX_FINAL_CHUNK) !== 0) {
    throw new WireFormatError(
      "bad-value",
      flagsAt,
      `transaction flags 0x${flags.toString(16)} set reserved bits`,
    );
  }
  if (previous !== undefined && !previous.header.finalChunk) {
    throw new WireFormatError(
      "bad-frame-order",
      frameAt,
      `TX_BEGIN after chunk ${previous.header.chunk} of a transaction that is not final`,
    );
  }
  const lsnAt = r.offset;
  const lsnField = r.uvarintBig("commit lsn");
  const timeAt = r.offset;
  const timeField = r.svarintBig("commit time");
  const xidAt = r.offset;
  const xidField = r.svarint("xid");
  const chunkAt = r.offset;
  const chunk = r.uvarint("chunk");

  const finalChunk = (flags & TX_FINAL_CHUNK) !== 0;
  if (previous === undefined) {
    if (xidField < 0 || xidField > MAX_U32)
      throw new WireFormatError("bad-value", xidAt, `xid ${xidField} is not a u32`);
    return {
      header: { commitLsn: lsnField, commitTimeMicros: timeField, xid: xidField, chunk, finalChunk },
      changes: [],
    };
  }
  const before = previous.header;
  if (lsnField === 0n) {
    throw new WireFormatError("bad-value", lsnAt, "commit lsn delta is 0: the same transaction twice");
  }
  const commitLsn = before.commitLsn + lsnField;
  if (commitLsn > MAX_U64) throw new WireFormatError("bad-value", lsnAt, "commit lsn exceeds 64 bits");
  const commitTimeMicros = before.commitTimeMicros + timeField;
  if (commitTimeMicros < MIN_I64 || commitTimeMicros > MAX_I64) {
    throw new WireFormatError("bad-value", timeAt, "commit time leaves the int64 range");
  }
  const xid = before.xid + xidField;
  if (xid < 0 || xid > MAX_U32) throw new WireFormatError("bad-value", xidAt, `xid ${xid} is not a u32`);
  if (chunk !== 0) {
    throw new WireFormatError(
      "bad-frame-order",
      chunkAt,
      `chunk ${chunk} of a transaction that is not the first of its message`,
    );
  }
  return { header: { commitLsn, commitTimeMicros, xid, chunk, finalChunk }, changes: [] };
}

function readChange(
  r: ByteReader,
  tag: number,
  refs: readonly SchemaRef[],
  slots: ValueSlots,
  insertBytes: boolean,
): ApplyChange {
  switch (tag) {
    case Tag.insert: {
      const relation = readRelation(r, refs);
      const values = insertBytes ? slots.readBytes(r) : slots.read(r, "column count", "values");
      return { kind: "insert", relation, values };
    }
    case Tag.update: {
      const relation = readRelation(r, refs);
      const key = slots.read(r, "key column count", "key");
      const m = r.count("changed column count");
      const changedColumns: number[] = [];
      const values: ColumnValue[] = [];
      let next = 0;
      for (let i = 0; i < m; i++) {
        const column = next + r.uvarint("column delta", MAX_COLUMN_INDEX - next);
        changedColumns.push(column);
        values.push(slots.one(r, "values", i));
        next = column + 1;
      }
      return { kind: "update", relation, key, changedColumns, values };
    }
    case Tag.delete: {
      const relation = readRelation(r, refs);
      return { kind: "delete", relation, key: slots.read(r, "key column count", "key") };
    }
    case Tag.truncate: {
      const flagsAt = r.offset;
      const flags = r.u8("truncate flags");
      if ((flags & ~(TRUNCATE_CASCADE | TRUNCATE_RESTART_IDENTITY)) !== 0) {
        throw new WireFormatError(
          "bad-value",
          flagsAt,
          `truncate flags 0x${flags.toString(16)} set reserved bits`,
        );
      }
      const n = r.count("truncated relation count");
      const relations: SchemaRef[] = [];
      for (let i = 0; i < n; i++) relations.push(readRelation(r, refs));
      return {
        kind: "truncate",
        relations,
        cascade: (flags & TRUNCATE_CASCADE) !== 0,
        restartIdentity: (flags & TRUNCATE_RESTART_IDENTITY) !== 0,
      };
    }
    case Tag.ddl: {
      const searchPath = r.string("search_path");
      return { kind: "ddl", searchPath, command: r.string("DDL command") };
    }
    default: {
      // Tag.sequences: decodeDataMessage lets only the change tags through.
      const n = r.count("sequence count");
      const sequences: SequencePosition[] = [];
      for (let i = 0; i < n; i++) sequences.push(readSequence(r, slots));
      return { kind: "sequence", sequences };
    }
  }
}

function readRelation(r: ByteReader, refs: readonly SchemaRef[]): SchemaRef {
  const at = r.offset;
  const index = r.uvarint("relation index");
  const ref = refs[index];
  if (ref === undefined) {
    throw new WireFormatError(
      "bad-reference",
      at,
      `relation index ${index} is not declared (${refs.length} SCHEMA_REF so far)`,
    );
  }
  return ref;
}

function readSequence(r: ByteReader, slots: ValueSlots): SequencePosition {
  const schema = r.string("sequence schema");
  const name = r.string("sequence name");
  const valueAt = r.offset;
  const lastValue = slots.plain(r, "sequence last_value");
  if (lastValue === null) throw new WireFormatError("bad-value", valueAt, "sequence last_value is NULL");
  const calledAt = r.offset;
  const called = r.u8("is_called");
  if (called > 1) throw new WireFormatError("bad-value", calledAt, `is_called is ${called}, not 0 or 1`);
  return { schema, name, lastValue, isCalled: called === 1 };
}
