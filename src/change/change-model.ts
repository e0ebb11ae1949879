import type { Lsn } from "./lsn.js";
import type { SchemaRef } from "./relation-schema.js";
import type { TextBytes } from "./text-bytes.js";

/**
 * A column value in PostgreSQL's own text representation (the type's output
 * function), or SQL NULL. Values are never converted to JavaScript types, so
 * microseconds, numeric precision and json bytes survive the trip.
 */
export type ColumnValue = string | null;

/**
 * A column value as the capture carries it: the UTF-8 bytes of its text,
 * a range of the pgoutput message written into the frame without ever
 * becoming a JavaScript string, or SQL NULL. Decoding and encoding every value was about
 * a quarter of the capture's CPU in bulk.
 */
export type ValueBytes = TextBytes | null;

/** What a frame's value can be written from: the text, or its UTF-8 bytes; the frame is the same. */
export type WritableValue = ColumnValue | ValueBytes;

/** An INSERT: every column of the new row, in the relation's column order. */
export interface InsertChange<V extends WritableValue = ColumnValue> {
  kind: "insert";
  relation: SchemaRef;
  values: V[];
}

/**
 * An UPDATE as a diff: the row's key as it was before the update, and only the
 * columns whose value changed. A key change shows up as key columns among the
 * changed columns. Unchanged TOASTed values are never among them.
 */
export interface UpdateChange<V extends WritableValue = ColumnValue> {
  kind: "update";
  relation: SchemaRef;
  /** Values of the relation's keyColumns, before the update. */
  key: V[];
  /** Indexes into the relation's columns, ascending. */
  changedColumns: number[];
  /** New values of changedColumns, in the same order. */
  values: V[];
}

/** A DELETE: the key of the removed row. */
export interface DeleteChange<V extends WritableValue = ColumnValue> {
  kind: "delete";
  relation: SchemaRef;
  key: V[];
}

export interface TruncateChange {
  kind: "truncate";
  relations: SchemaRef[];
  cascade: boolean;
  restartIdentity: boolean;
}

/** A DDL command captured by the source's event trigger, in order with the data. */
export interface DdlChange {
  kind: "ddl";
  /** The search_path the command ran under on the source. */
  searchPath: string;
  command: string;
}

/** Positions of source sequences, so that a promoted standby generates no used value. */
export interface SequenceChange {
  kind: "sequence";
  sequences: SequencePosition[];
}

export interface SequencePosition {
  schema: string;
  name: string;
  /** pg_sequences.last_value as text (int8). */
  lastValue: string;
  isCalled: boolean;
}

/** A change; its row values are text (V = ColumnValue, as decoded from a frame) or bytes (ValueBytes, as captured). */
export type Change<V extends WritableValue = ColumnValue> =
  | InsertChange<V>
  | UpdateChange<V>
  | DeleteChange<V>
  | TruncateChange
  | DdlChange
  | SequenceChange;

/**
 * A change as the applier decodes it: an insert's text values stay the UTF-8
 * bytes of the Kafka message, which COPY takes as they are; every other value
 * is text (statement parameters, keys to compare, messages to show).
 */
export type ApplyChange = InsertChange<WritableValue> | Exclude<Change, InsertChange>;

/**
 * The header every frame of a source transaction carries. A transaction too
 * large for one Kafka message is split into chunks 0..n, the last one marked
 * final; (commitLsn, chunk) identifies a chunk, so duplicates from a capture
 * restart can be recognised downstream.
 */
export interface TransactionHeader {
  /** LSN of the commit record (pgoutput Begin's final LSN). Orders transactions. */
  commitLsn: Lsn;
  /** Commit time, microseconds since the Unix epoch. */
  commitTimeMicros: bigint;
  xid: number;
  chunk: number;
  finalChunk: boolean;
}

export interface TransactionChunk<C extends ApplyChange = Change> {
  header: TransactionHeader;
  changes: C[];
  /** Pieces of values too large for one message; absent when there are none. */
  valueParts?: ValuePart[];
  /** Values of `changes` that stand for joined pieces (null until the consumer joins them); absent when none. */
  joined?: JoinedSlot[];
}

/**
 * A piece of the UTF-8 text of a value too large for one Kafka message. The
 * pieces of one value follow each other, possibly across chunks; the one
 * marked last completes it, and completed values fill the transaction's
 * joined slots in order.
 */
export interface ValuePart {
  /** Index in the chunk's changes of the change this piece comes before; changes.length when after all. */
  beforeChange: number;
  bytes: Buffer;
  last: boolean;
}

/** A value of a change that is the next joined value of its transaction. */
export interface JoinedSlot {
  /** Index in the chunk's changes. */
  change: number;
  /** Which array of that change holds the value: `key` (update, delete) or `values` (insert, update). */
  field: "key" | "values";
  index: number;
}
