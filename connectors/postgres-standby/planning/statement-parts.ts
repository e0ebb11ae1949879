import type { ColumnValue, InsertChange, WritableValue } from "../../../src/change/change-model.js";
import { valueText } from "../../../src/change/text-bytes.js";
import { quoteIdent } from "../../../src/sql/quote.js";
import type { TargetColumn } from "../standby-catalog.js";
import type { StatementDescription } from "./planned-statement.js";
import { columnAt, type TableMapping } from "./table-mapping.js";

export const TEXT = "pg_catalog.text";

export function valueAt<V extends WritableValue>(values: V[], index: number): V {
  const value = values[index];
  if (value === undefined)
    throw new Error(`value index ${index} is outside the change's ${values.length} values`);
  return value;
}

export function cachedSql(mapping: TableMapping, shape: string, build: () => string): string {
  let sql = mapping.sql.get(shape);
  if (sql === undefined) {
    sql = build();
    mapping.sql.set(shape, sql);
  }
  return sql;
}

/** `$n` as the column's type: text in, parsed by the standby type's own input function. */
export function scalar(n: number, column: TargetColumn): string {
  return `$${n}::${TEXT}::${column.castType}`;
}

/**
 * Source column indexes an UPDATE writes: its changed columns the standby does
 * not generate. The same array when it generates none of them (nearly always).
 */
export function updateWrites(mapping: TableMapping, changedColumns: number[]): number[] {
  for (const index of changedColumns) {
    if (columnAt(mapping.columns, index).generated)
      return changedColumns.filter((column) => !columnAt(mapping.columns, column).generated);
  }
  return changedColumns;
}

/**
 * Whether an UPDATE would have to SET an identity ALWAYS column, which
 * PostgreSQL refuses ("can only be updated to DEFAULT") and which has no
 * OVERRIDING clause: such an update moves the row instead (singleUpdate).
 */
export function writesIdentityAlways(mapping: TableMapping, writes: number[]): boolean {
  for (const index of writes) if (columnAt(mapping.columns, index).identityAlways) return true;
  return false;
}

/**
 * The SET list of an UPDATE. An UPDATE whose every changed column is generated
 * on the standby still rewrites the row, as the source did, and still proves
 * that the row exists: it assigns a column to itself, one that UPDATE may set
 * (an identity ALWAYS column "can only be updated to DEFAULT") where there is one.
 */
export function setList(
  mapping: TableMapping,
  writes: number[],
  valueExpr: (position: number) => string,
): string {
  if (writes.length === 0) {
    const settable = mapping.written.find((index) => !columnAt(mapping.columns, index).identityAlways);
    const self = quoteIdent(columnAt(mapping.columns, settable ?? mapping.written[0] ?? 0).name);
    return `${self} = t.${self}`;
  }
  return writes
    .map((index, position) => `${quoteIdent(columnAt(mapping.columns, index).name)} = ${valueExpr(position)}`)
    .join(", ");
}

/** The quoted names of the columns an INSERT writes, in source column order. */
export function writtenNames(mapping: TableMapping): string {
  return mapping.written.map((index) => quoteIdent(columnAt(mapping.columns, index).name)).join(", ");
}

export function insertColumns(mapping: TableMapping): string {
  return `INSERT INTO ${mapping.qualified} (${writtenNames(mapping)})${mapping.overriding ? " OVERRIDING SYSTEM VALUE" : ""}`;
}

export function insertKey(mapping: TableMapping, change: InsertChange<WritableValue>): ColumnValue[] {
  return mapping.source.keyColumns.map((index) => valueText(valueAt(change.values, index)));
}

export function describe(
  mapping: TableMapping,
  kind: "insert" | "update" | "delete",
  keys: ColumnValue[][],
  changeIndices: number[],
): StatementDescription {
  return {
    kind,
    tables: [{ schema: mapping.target.schema, table: mapping.target.table }],
    keyColumns: mapping.keyNames,
    keys,
    changeIndices,
  };
}
