import { OversizedValue, type TupleValue, UNCHANGED_TOAST } from "../../connectors/postgres-source/index.js";
import { formatLsn } from "../../src/change/lsn.js";
import { quoteIdent } from "../../src/sql/quote.js";
import {
  effectiveNewRow,
  type StreamRowChange,
  type StreamTable,
  type StreamTransaction,
} from "./unpublished-transactions.js";

/** One undo statement, and what it must touch: a delete removes exactly one row. */
export interface RewindStatement {
  sql: string;
  params: (string | null)[];
  /** Rows it must affect; anything else means the old primary is not what its WAL says. */
  expectedRows: 1;
  /** For the error: commit LSN, table and key. */
  describes: string;
}

/**
 * Why these transactions cannot be undone from what the WAL holds, one reason
 * each; empty when they can. An undo needs the whole old row of every update
 * and delete (REPLICA IDENTITY FULL, which the capture sets), and cannot bring
 * back what TRUNCATE or a schema change removed.
 */
export function rewindBlockers(transactions: StreamTransaction[]): string[] {
  const reasons = new Set<string>();
  for (const t of transactions) {
    const at = `commit ${formatLsn(t.commitLsn)}`;
    for (const ddl of t.ddl)
      reasons.add(
        `${at} changed the schema (${ddl}): a schema change cannot be undone row by row (the re-seed copies the rows; the change itself stays on the old primary: undo it by hand)`,
      );
    for (const table of t.truncated)
      reasons.add(`${at} truncated ${table}: the rows it removed are not in the WAL`);
    for (const c of t.changes) {
      if (c.op === "insert") continue;
      if (!c.oldRow || !c.oldIsWholeRow) {
        reasons.add(
          `${at} ${c.op === "update" ? "updated" : "deleted"} rows of ${c.table.name}, whose REPLICA IDENTITY is not FULL: their old rows are not in the WAL`,
        );
      } else if (c.oldRow.includes(UNCHANGED_TOAST)) {
        reasons.add(`${at} ${c.op}d a row of ${c.table.name} whose old row lacks a TOASTed value`);
      }
    }
  }
  return [...reasons];
}

/**
 * The statements that undo `transactions` (in commit order, all with
 * rewindBlockers empty), last change first: an insert is deleted, an update's
 * row is deleted and its old row put back, a deleted row is put back. Put-back
 * rows keep their identity values (OVERRIDING SYSTEM VALUE); the caller runs
 * them with session_replication_role = replica, so no trigger or foreign-key
 * check fires, as on any standby.
 */
export function rewindStatements(transactions: StreamTransaction[]): RewindStatement[] {
  const out: RewindStatement[] = [];
  for (const t of [...transactions].reverse()) {
    for (const change of [...t.changes].reverse()) out.push(...undo(change, formatLsn(t.commitLsn)));
  }
  return out;
}

function undo(change: StreamRowChange, commitLsn: string): RewindStatement[] {
  const { table } = change;
  switch (change.op) {
    case "insert":
      return [deleteRow(table, change.newRow, commitLsn)];
    case "update":
      return [
        deleteRow(table, effectiveNewRow(change), commitLsn),
        insertRow(table, change.oldRow as TupleValue[]),
      ];
    case "delete":
      return [insertRow(table, change.oldRow)];
  }
}

function text(value: TupleValue | undefined): string | null {
  if (value === UNCHANGED_TOAST || value === undefined) throw new Error("a value the stream did not carry");
  if (value instanceof OversizedValue) {
    throw new Error(`a value of ${value.bytes} bytes, above what can be decoded (capture.maxValueBytes)`);
  }
  return value;
}

/**
 * By primary key: one row. Without one, the key is the whole row and rows may
 * repeat: one of the equal rows (by ctid), compared as text, which every type
 * has, in the session's pinned value format.
 */
function deleteRow(table: StreamTable, row: TupleValue[], commitLsn: string): RewindStatement {
  const params = table.keyColumns.map((i) => text(row[i]));
  const conditions = table.keyColumns.map((i, n) => {
    const column = table.columns[i] as StreamTable["columns"][number];
    return table.hasPrimaryKey
      ? `${quoteIdent(column.name)} = $${n + 1}::${column.typeName}`
      : `${quoteIdent(column.name)}::pg_catalog.text IS NOT DISTINCT FROM $${n + 1}::pg_catalog.text`;
  });
  const from = `${table.relkind === "p" ? "" : "ONLY "}${table.qualified}`;
  const where = conditions.join(" AND ");
  const sql = table.hasPrimaryKey
    ? `DELETE FROM ${from} WHERE ${where}`
    : `DELETE FROM ${from} WHERE ctid = (SELECT ctid FROM ${from} WHERE ${where} LIMIT 1)`;
  const key = Object.fromEntries(table.keyColumns.map((i, n) => [table.columns[i]?.name, params[n]]));
  return {
    sql,
    params,
    expectedRows: 1,
    describes: `commit ${commitLsn}: ${table.name} ${JSON.stringify(key)}`,
  };
}

function insertRow(table: StreamTable, row: TupleValue[]): RewindStatement {
  const columns = table.columns.map((c) => quoteIdent(c.name)).join(", ");
  const values = table.columns.map((c, i) => `$${i + 1}::${c.typeName}`).join(", ");
  return {
    sql: `INSERT INTO ${table.qualified} (${columns}) OVERRIDING SYSTEM VALUE VALUES (${values})`,
    params: table.columns.map((_, i) => text(row[i])),
    expectedRows: 1,
    describes: `${table.name}: putting back its old row`,
  };
}
