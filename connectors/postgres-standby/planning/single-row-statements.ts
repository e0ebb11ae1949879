import type {
  ColumnValue,
  DeleteChange,
  InsertChange,
  UpdateChange,
  WritableValue,
} from "../../../src/change/change-model.js";
import { valueText } from "../../../src/change/text-bytes.js";
import { quoteIdent } from "../../../src/sql/quote.js";
import type { PlannedStatement, StatementDescription } from "./planned-statement.js";
import {
  cachedSql,
  describe,
  insertColumns,
  insertKey,
  scalar,
  setList,
  TEXT,
  updateWrites,
  valueAt,
  writesIdentityAlways,
} from "./statement-parts.js";
import { columnAt, type TableMapping } from "./table-mapping.js";

function oneRow(
  sql: string,
  params: ColumnValue[],
  description: StatementDescription,
  group: number,
): PlannedStatement {
  return { sql, params, expectedRows: 1, description, batched: false, group, prepare: true };
}

/** The key columns' conditions, their parameters numbered from `offset + 1`. */
function keyWhere(mapping: TableMapping, offset: number): string {
  return mapping.source.keyColumns
    .map((sourceIndex, position) => {
      const column = columnAt(mapping.columns, sourceIndex);
      return `t.${quoteIdent(column.name)} = ${scalar(offset + position + 1, column)}`;
    })
    .join(" AND ");
}

/**
 * WHERE conditions that find a row of a table without primary key by its whole
 * old row. Equality in the column's own type lets an index help; the standby's
 * text output of both sides makes the match exact, since equality can hold
 * between values the source tells apart (numeric 1.0 and 1.00, citext 'A' and
 * 'a'), and is the only comparison json, point or xml have. A NULL is matched
 * with IS NULL, so the text of the statement depends on where the NULLs are.
 */
function rowMatch(
  mapping: TableMapping,
  key: ColumnValue[],
  firstParam: number,
): { sql: string; params: string[] } {
  const conditions: string[] = [];
  const params: string[] = [];
  mapping.source.keyColumns.forEach((sourceIndex, keyPosition) => {
    if (!mapping.matchColumns.includes(sourceIndex)) return;
    const column = columnAt(mapping.columns, sourceIndex);
    const name = `t.${quoteIdent(column.name)}`;
    const value = valueAt(key, keyPosition);
    if (value === null) {
      conditions.push(`${name} IS NULL`);
      return;
    }
    params.push(value);
    const param = scalar(firstParam + params.length - 1, column);
    const asText = `${name}::${TEXT} = (${param})::${TEXT}`;
    conditions.push(column.hasEquality ? `${name} = ${param} AND ${asText}` : asText);
  });
  return { sql: conditions.join(" AND "), params };
}

function nullPattern(key: ColumnValue[]): string {
  return key.map((value) => (value === null ? "n" : "v")).join("");
}

/** One row of a table without primary key, found by its old row; exactly one, even among identical rows. */
function victim(mapping: TableMapping, match: string): string {
  return `WITH victim AS (SELECT t.tableoid, t.ctid FROM ${mapping.qualified} AS t WHERE ${match} LIMIT 1) `;
}

const VICTIM_ROW = "t.tableoid = victim.tableoid AND t.ctid = victim.ctid";

export function singleInsert(
  mapping: TableMapping,
  change: InsertChange<WritableValue>,
  index: number,
  group: number,
): PlannedStatement {
  const sql = cachedSql(mapping, "insert-1", () => {
    const values = mapping.written.map((sourceIndex, position) =>
      scalar(position + 1, columnAt(mapping.columns, sourceIndex)),
    );
    // With a key, an existing row is drift: DO NOTHING reports it as a row
    // count of 0 instead of an error that would abort the whole transaction.
    const conflict = mapping.source.hasPrimaryKey
      ? ` ON CONFLICT (${mapping.keyNames.map(quoteIdent).join(", ")}) DO NOTHING`
      : "";
    return `${insertColumns(mapping)} VALUES (${values.join(", ")})${conflict}`;
  });
  const params = mapping.written.map((sourceIndex) => valueText(valueAt(change.values, sourceIndex)));
  return oneRow(sql, params, describe(mapping, "insert", [insertKey(mapping, change)], [index]), group);
}

/** `changeIndices` are the source changes `change` stands for: several when it is a fold of them. */
export function singleUpdate(
  mapping: TableMapping,
  change: UpdateChange,
  changeIndices: number[],
  group: number,
): PlannedStatement {
  const writes = updateWrites(mapping, change.changedColumns);
  const newValues =
    writes === change.changedColumns
      ? change.values
      : writes.map((sourceIndex) => valueAt(change.values, change.changedColumns.indexOf(sourceIndex)));
  const set = (offset: number) =>
    setList(mapping, writes, (position) =>
      scalar(offset + position + 1, columnAt(mapping.columns, writes[position] ?? 0)),
    );
  const keys = changeIndices.map(() => change.key);
  const description = describe(mapping, "update", keys, changeIndices);
  if (writesIdentityAlways(mapping, writes))
    return movedRow(mapping, change, writes, newValues, description, group);
  if (mapping.source.hasPrimaryKey) {
    const sql = cachedSql(
      mapping,
      `update-1:${writes.join(",")}`,
      () => `UPDATE ${mapping.qualified} AS t SET ${set(0)} WHERE ${keyWhere(mapping, writes.length)}`,
    );
    return oneRow(sql, [...newValues, ...change.key], description, group);
  }
  const match = rowMatch(mapping, change.key, 1);
  const sql = cachedSql(mapping, `update-row:${nullPattern(change.key)}:${writes.join(",")}`, () => {
    return `${victim(mapping, match.sql)}UPDATE ${mapping.qualified} AS t SET ${set(match.params.length)} FROM victim WHERE ${VICTIM_ROW}`;
  });
  return oneRow(sql, [...match.params, ...newValues], description, group);
}

/**
 * An update that gives an identity ALWAYS column the source's value: UPDATE
 * cannot, INSERT can (OVERRIDING SYSTEM VALUE). The row is deleted and
 * inserted again in one statement, its unchanged columns (unchanged TOASTed
 * values included, which the stream does not carry) taken from the deleted
 * row. Triggers and foreign keys do not fire under the applier's replica
 * role, so nothing else sees a delete. Zero rows inserted means the row was
 * missing, reported as drift like any update's.
 */
function movedRow(
  mapping: TableMapping,
  change: UpdateChange,
  writes: number[],
  newValues: ColumnValue[],
  description: StatementDescription,
  group: number,
): PlannedStatement {
  const keyed = mapping.source.hasPrimaryKey;
  const match = keyed ? null : rowMatch(mapping, change.key, 1);
  const matchParams = keyed ? [...change.key] : (match?.params ?? []);
  const shape = `move:${keyed ? "key" : nullPattern(change.key)}:${writes.join(",")}`;
  const sql = cachedSql(mapping, shape, () => {
    const from = keyed
      ? `DELETE FROM ${mapping.qualified} AS t WHERE ${keyWhere(mapping, 0)}`
      : `DELETE FROM ${mapping.qualified} AS t USING victim WHERE ${VICTIM_ROW}`;
    const select = mapping.written.map((sourceIndex) => {
      const column = columnAt(mapping.columns, sourceIndex);
      const position = writes.indexOf(sourceIndex);
      return position < 0
        ? `old.${quoteIdent(column.name)}`
        : scalar(matchParams.length + position + 1, column);
    });
    const victimCte = keyed ? "WITH " : `${victim(mapping, match?.sql ?? "").slice(0, -1)}, `;
    return `${victimCte}old AS (${from} RETURNING t.*) ${insertColumns(mapping)} SELECT ${select.join(", ")} FROM old`;
  });
  return oneRow(sql, [...matchParams, ...newValues], description, group);
}

export function singleDelete(
  mapping: TableMapping,
  change: DeleteChange,
  index: number,
  group: number,
): PlannedStatement {
  const description = describe(mapping, "delete", [change.key], [index]);
  if (mapping.source.hasPrimaryKey) {
    const sql = cachedSql(
      mapping,
      "delete-1",
      () => `DELETE FROM ${mapping.qualified} AS t WHERE ${keyWhere(mapping, 0)}`,
    );
    return oneRow(sql, [...change.key], description, group);
  }
  const match = rowMatch(mapping, change.key, 1);
  const sql = cachedSql(
    mapping,
    `delete-row:${nullPattern(change.key)}`,
    () =>
      `${victim(mapping, match.sql)}DELETE FROM ${mapping.qualified} AS t USING victim WHERE ${VICTIM_ROW}`,
  );
  return oneRow(sql, match.params, description, group);
}
