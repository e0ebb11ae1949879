import type { DdlChange, SequencePosition, TruncateChange } from "../../../src/change/change-model.js";
import { quoteQualified } from "../../../src/sql/quote.js";
import type { PlannedStatement, ResolveRelation } from "./planned-statement.js";
import { TEXT } from "./statement-parts.js";

export function truncate(
  change: TruncateChange,
  resolve: ResolveRelation,
  index: number,
  group: number,
): PlannedStatement {
  const tables = change.relations.map((ref) => {
    const { target } = resolve(ref);
    return { schema: target.schema, table: target.table };
  });
  const list = tables.map(({ schema, table }) => quoteQualified(schema, table)).join(", ");
  const options = `${change.restartIdentity ? " RESTART IDENTITY" : ""}${change.cascade ? " CASCADE" : ""}`;
  return {
    sql: `TRUNCATE TABLE ${list}${options}`,
    params: [],
    expectedRows: null,
    description: { kind: "truncate", tables, keyColumns: [], keys: [], changeIndices: [index] },
    batched: false,
    group,
    prepare: false,
  };
}

/**
 * Moves a standby sequence to the source's position, never backwards (in the
 * sequence's own direction). Positions are compared as the next value each
 * would hand out. A standby ahead of the source only leaves a gap after a
 * promotion; one behind would hand out values the source already used.
 */
export function sequence(position: SequencePosition, index: number, group: number): PlannedStatement {
  const qualified = quoteQualified(position.schema, position.name);
  const nextValue = (value: string, called: string) =>
    `(${value}::pg_catalog.numeric + CASE WHEN ${called} THEN p.seqincrement ELSE 0 END)`;
  const sql =
    `SELECT pg_catalog.setval(p.seqrelid, $1::pg_catalog.int8, $2::pg_catalog.bool) ` +
    `FROM ${qualified} AS cur, pg_catalog.pg_sequence AS p ` +
    `WHERE p.seqrelid = $3::${TEXT}::pg_catalog.regclass ` +
    `AND pg_catalog.sign(p.seqincrement) * (${nextValue("$1::pg_catalog.int8", "$2::pg_catalog.bool")} - ${nextValue("cur.last_value", "cur.is_called")}) > 0`;
  return {
    sql,
    params: [position.lastValue, position.isCalled ? "true" : "false", qualified],
    expectedRows: null,
    description: {
      kind: "sequence",
      tables: [{ schema: position.schema, table: position.name }],
      keyColumns: [],
      keys: [],
      changeIndices: [index],
    },
    batched: false,
    group,
    prepare: true,
  };
}

export function ddl(change: DdlChange, index: number, group: number): PlannedStatement {
  return {
    sql: change.command,
    params: [],
    expectedRows: null,
    description: { kind: "ddl", tables: [], keyColumns: [], keys: [], changeIndices: [index] },
    batched: false,
    group,
    // The command may hold several statements: only the simple protocol runs those.
    prepare: false,
    searchPath: change.searchPath,
  };
}
