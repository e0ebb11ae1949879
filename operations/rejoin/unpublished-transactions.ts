import type pg from "pg";
import {
  DDL_PREFIX,
  decodePgoutput,
  loadRelationSchema,
  OversizedValue,
  type PgoutputMessage,
  type RelationMessage,
  type TupleValue,
  UNCHANGED_TOAST,
} from "../../connectors/postgres-source/index.js";
import { formatLsn, type Lsn } from "../../src/change/lsn.js";
import { quoteIdent, quoteQualified } from "../../src/sql/quote.js";
import type { UnpublishedChange, UnpublishedTransaction } from "./rejoin-report.js";

/** A table as the old primary's stream describes it, with its real key. */
export interface StreamTable {
  qualified: string;
  name: string;
  /** 'p' for a partitioned table (published through its root), else its own rows only. */
  relkind: string;
  /** In the stream's order (generated columns are not in the stream). */
  columns: { name: string; typeName: string }[];
  /** Indexes into columns: the primary key, or every column when there is none. */
  keyColumns: number[];
  hasPrimaryKey: boolean;
}

export type StreamRowChange =
  | { op: "insert"; table: StreamTable; newRow: TupleValue[] }
  | {
      op: "update";
      table: StreamTable;
      oldRow: TupleValue[] | null;
      oldIsWholeRow: boolean;
      newRow: TupleValue[];
    }
  | { op: "delete"; table: StreamTable; oldRow: TupleValue[]; oldIsWholeRow: boolean };

/** One transaction the old primary committed, decoded from its slot. */
export interface StreamTransaction {
  commitLsn: Lsn;
  commitTimeMicros: bigint;
  xid: number;
  changes: StreamRowChange[];
  truncated: string[];
  ddl: string[];
}

/**
 * The transactions the old capture's slot still holds (everything after its
 * confirmed position), decoded without consuming them
 * (pg_logical_slot_peek_binary_changes) by the capture's own pgoutput decoder,
 * keeping only those with a commit LSN after `after`: the capture may publish
 * before it confirms, so what is at or below the last transaction the new
 * primary holds did reach it. Transactions with no row change, truncate or
 * DDL (diffrelay's sequence positions) are left out.
 *
 * The client must carry the value-format settings (src/sql/value-format.ts):
 * the output functions run in its session.
 */
export async function findUnpublishedTransactions(
  client: pg.Client,
  options: { slot: string; publication: string; after: Lsn },
): Promise<StreamTransaction[]> {
  const { rows } = await client.query<{ data: Buffer }>(
    `SELECT data FROM pg_catalog.pg_logical_slot_peek_binary_changes($1, NULL, NULL,
       'proto_version', '1', 'publication_names', $2, 'messages', 'true')`,
    // pgoutput splits publication_names like an identifier list.
    [options.slot, quoteIdent(options.publication)],
  );
  const relations = new Map<number, StreamTable>();
  const out: StreamTransaction[] = [];
  let current: StreamTransaction | null = null;
  for (const { data } of rows) {
    const message: PgoutputMessage = decodePgoutput(data);
    switch (message.tag) {
      case "begin":
        current = {
          commitLsn: message.finalLsn,
          commitTimeMicros: message.commitTimeMicros,
          xid: message.xid,
          changes: [],
          truncated: [],
          ddl: [],
        };
        break;
      case "commit":
        if (current && current.commitLsn > options.after && touchesData(current)) out.push(current);
        current = null;
        break;
      case "relation":
        relations.set(message.relationId, await streamTable(client, message));
        break;
      case "insert":
        inTransaction(current, message).changes.push({
          op: "insert",
          table: relationOf(relations, message.relationId),
          newRow: message.newTuple,
        });
        break;
      case "update":
        inTransaction(current, message).changes.push({
          op: "update",
          table: relationOf(relations, message.relationId),
          oldRow: message.oldTuple ?? null,
          oldIsWholeRow: message.oldKind === "old",
          newRow: message.newTuple,
        });
        break;
      case "delete":
        inTransaction(current, message).changes.push({
          op: "delete",
          table: relationOf(relations, message.relationId),
          oldRow: message.oldTuple,
          oldIsWholeRow: message.oldKind === "old",
        });
        break;
      case "truncate":
        inTransaction(current, message).truncated.push(
          ...message.relationIds.map((id) => relationOf(relations, id).name),
        );
        break;
      case "message":
        // Non-transactional messages are the capture's heartbeats, outside any transaction.
        if (message.transactional && message.prefix === DDL_PREFIX) {
          const body = JSON.parse(message.content.toString("utf8")) as { command?: string };
          inTransaction(current, message).ddl.push(String(body.command));
        }
        break;
      default:
        break;
    }
  }
  return out;
}

function touchesData(t: StreamTransaction): boolean {
  return t.changes.length > 0 || t.truncated.length > 0 || t.ddl.length > 0;
}

function inTransaction(current: StreamTransaction | null, message: PgoutputMessage): StreamTransaction {
  if (!current) throw new Error(`pgoutput ${message.tag} message outside a transaction in the slot's stream`);
  return current;
}

function relationOf(relations: Map<number, StreamTable>, id: number): StreamTable {
  const table = relations.get(id);
  if (!table) throw new Error(`pgoutput row message for relation ${id} before its Relation message`);
  return table;
}

async function streamTable(client: pg.Client, relation: RelationMessage): Promise<StreamTable> {
  const schema = await loadRelationSchema(client, relation.relationId, relation);
  const { rows } = await client.query<{ relkind: string }>(
    "SELECT relkind::text FROM pg_catalog.pg_class WHERE oid = $1",
    [relation.relationId],
  );
  return {
    qualified: quoteQualified(relation.schema, relation.table),
    name: `${relation.schema}.${relation.table}`,
    relkind: rows[0]?.relkind ?? "r",
    columns: schema.columns.map((c) => ({ name: c.name, typeName: c.typeName })),
    keyColumns: schema.keyColumns,
    hasPrimaryKey: schema.hasPrimaryKey,
  };
}

/** The report's view of a decoded transaction. */
export function describeTransaction(t: StreamTransaction, inOldTopic: boolean): UnpublishedTransaction {
  return {
    commitLsn: formatLsn(t.commitLsn),
    commitTime: new Date(Number(t.commitTimeMicros / 1000n)).toISOString(),
    xid: t.xid,
    reachedOldTopic: inOldTopic,
    changes: t.changes.map(describeChange),
    truncated: t.truncated,
    ddl: t.ddl,
  };
}

function describeChange(change: StreamRowChange): UnpublishedChange {
  const key = (row: TupleValue[]) =>
    Object.fromEntries(
      change.table.keyColumns.map((i) => {
        const value = row[i];
        return [
          change.table.columns[i]?.name as string,
          value === UNCHANGED_TOAST
            ? "(unchanged TOAST)"
            : value instanceof OversizedValue
              ? `(${value.bytes} bytes, above the value limit)`
              : (value ?? null),
        ];
      }),
    );
  switch (change.op) {
    case "insert":
      return { op: "insert", table: change.table.name, key: key(change.newRow) };
    case "delete":
      return { op: "delete", table: change.table.name, key: key(change.oldRow) };
    case "update": {
      const before = key(change.oldRow ?? change.newRow);
      const after = key(effectiveNewRow(change));
      const moved = JSON.stringify(before) !== JSON.stringify(after);
      return { op: "update", table: change.table.name, key: before, ...(moved ? { newKey: after } : {}) };
    }
  }
}

/** An update's new row with its unchanged TOASTed values taken from the old row (they are equal). */
export function effectiveNewRow(change: Extract<StreamRowChange, { op: "update" }>): TupleValue[] {
  return change.newRow.map((v, i) => (v === UNCHANGED_TOAST && change.oldRow ? (change.oldRow[i] ?? v) : v));
}
