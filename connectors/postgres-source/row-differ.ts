import type { Change, ValueBytes } from "../../src/change/change-model.js";
import type { Lsn } from "../../src/change/lsn.js";
import type { RelationSchema, SchemaRef } from "../../src/change/relation-schema.js";
import { TextBytes } from "../../src/change/text-bytes.js";
import {
  OversizedValue,
  type PgoutputMessage,
  type TupleValue,
  UNCHANGED_TOAST,
} from "./pgoutput/pgoutput-decoder.js";
import { ValueTooLargeError } from "./unpublishable-change.js";

type RowMessage = Extract<PgoutputMessage<TextBytes>, { tag: "insert" | "update" | "delete" }>;
type Tuple = TupleValue<TextBytes>[];

/** A change as the capture builds it: values are the bytes pgoutput sent, never decoded. */
export type CapturedChange = Change<ValueBytes>;

export interface KnownRelation {
  schema: RelationSchema;
  ref: SchemaRef;
}

/**
 * Turns one decoded pgoutput row message into a row-level diff.
 *
 * With REPLICA IDENTITY FULL the old row is in the stream, so an UPDATE
 * carries exactly the columns whose text differs, compared byte for byte. With DEFAULT identity only
 * the new row is there, so every column the stream carries is sent, minus the
 * unchanged key. Unchanged TOASTed values are absent from the stream and are
 * never sent: downstream they keep their value, never NULL or a placeholder.
 */
export function toChange(
  message: RowMessage,
  relation: KnownRelation,
  commitLsn: Lsn,
  maxValueBytes: number,
): CapturedChange {
  const { schema, ref } = relation;
  refuseOversized(message, schema, commitLsn, maxValueBytes);
  switch (message.tag) {
    case "insert": {
      // The decoded row itself, once every value is checked present: no second array per insert.
      const row = message.newTuple;
      for (let i = 0; i < row.length; i++) present(row[i], schema, i);
      return { kind: "insert", relation: ref, values: row as ValueBytes[] };
    }
    case "delete":
      return { kind: "delete", relation: ref, key: keyOf(message.oldTuple, schema) };
    case "update":
      return diffUpdate(message, relation);
  }
}

function diffUpdate(
  message: Extract<PgoutputMessage<TextBytes>, { tag: "update" }>,
  { schema, ref }: KnownRelation,
): CapturedChange {
  const { oldTuple, newTuple, oldKind } = message;
  const key = keyOf(oldTuple ?? newTuple, schema);
  const changedColumns: number[] = [];
  const values: ValueBytes[] = [];
  const keyUnchanged = oldTuple === undefined;
  for (let i = 0; i < newTuple.length; i++) {
    const next = newTuple[i] as TupleValue<TextBytes>;
    if (next === UNCHANGED_TOAST || next instanceof OversizedValue) continue;
    if (oldKind === "old") {
      if (sameValue((oldTuple as Tuple)[i], next)) continue;
    } else if (keyUnchanged && schema.keyColumns.includes(i)) {
      continue;
    }
    changedColumns.push(i);
    values.push(next);
  }
  return { kind: "update", relation: ref, key, changedColumns, values };
}

/** Whether an old value equals a new one (bytes or NULL); a value missing from the old row never does. */
function sameValue(old: TupleValue<TextBytes> | undefined, next: TextBytes | null): boolean {
  if (next === null || old === null) return old === next;
  return old instanceof TextBytes && old.equals(next);
}

function keyOf(tuple: Tuple, schema: RelationSchema): ValueBytes[] {
  return schema.keyColumns.map((i) => present(tuple[i], schema, i));
}

/** A row with a value above the limit stops the capture, naming the row. */
function refuseOversized(message: RowMessage, schema: RelationSchema, commitLsn: Lsn, limit: number): void {
  const tuples: Tuple[] =
    message.tag === "delete"
      ? [message.oldTuple]
      : message.tag === "update"
        ? [message.newTuple, message.oldTuple ?? []]
        : [message.newTuple];
  for (const tuple of tuples) {
    const column = tuple.findIndex((v) => v instanceof OversizedValue);
    if (column < 0) continue;
    const keyTuple = message.tag === "update" ? (message.oldTuple ?? message.newTuple) : tuple;
    const key = schema.keyColumns
      .map((i) => {
        const v = keyTuple[i];
        if (v instanceof OversizedValue) return `<${v.bytes} bytes>`;
        if (v === null || v === undefined || v === UNCHANGED_TOAST) return "NULL";
        // Shown, so decoded: the first 100 characters at most (each takes at most 4 bytes).
        const text = v.buf.toString("utf8", v.start, Math.min(v.end, v.start + 400));
        return JSON.stringify(text.length > 100 || v.length > 400 ? `${text.slice(0, 100)}...` : text);
      })
      .join(", ");
    throw new ValueTooLargeError(
      {
        table: `${schema.schema}.${schema.table}`,
        column: schema.columns[column]?.name ?? String(column),
        key: `(${key})`,
        commitLsn,
      },
      (tuple[column] as OversizedValue).bytes,
      limit,
    );
  }
}

function present(
  value: TupleValue<TextBytes> | undefined,
  schema: RelationSchema,
  column: number,
): ValueBytes {
  if (value === UNCHANGED_TOAST || value === undefined || value instanceof OversizedValue) {
    // Only an UPDATE's non-key columns may be left out of the stream; anything
    // else means the stream and the schema disagree, and guessing would corrupt.
    throw new Error(
      `${schema.schema}.${schema.table}: column ${schema.columns[column]?.name ?? column} has no value in the stream where one is required`,
    );
  }
  return value;
}
