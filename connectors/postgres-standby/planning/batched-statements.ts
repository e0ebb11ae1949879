import type {
  ColumnValue,
  DeleteChange,
  InsertChange,
  WritableValue,
} from "../../../src/change/change-model.js";
import { CopyTextWriter } from "../../../src/sql/copy-text.js";
import { quoteIdent } from "../../../src/sql/quote.js";
import type { IndexedChange, PlannedStatement, StatementDescription } from "./planned-statement.js";
import {
  cachedSql,
  describe,
  insertKey,
  setList,
  TEXT,
  updateWrites,
  valueAt,
  writtenNames,
} from "./statement-parts.js";
import { columnAt, type TableMapping } from "./table-mapping.js";
import type { FoldedRow } from "./update-folding.js";

export function chunks<T>(items: T[], size: number): T[][] {
  const result: T[][] = [];
  for (let start = 0; start < items.length; start += size) result.push(items.slice(start, start + size));
  return result;
}

/** Parallel arrays, one per column, from rows of `width` values. */
export function columnArrays(rows: ColumnValue[][], width: number): ColumnValue[][] {
  return Array.from({ length: width }, (_, column) => rows.map((row) => valueAt(row, column)));
}

/**
 * Rows from parallel text arrays. ROWS FROM spells out what multi-argument
 * unnest means; that shorthand only exists for the unqualified name.
 */
function unnest(aliases: string[]): string {
  const arrays = aliases.map((_, position) => `pg_catalog.unnest($${position + 1}::${TEXT}[])`).join(", ");
  return `ROWS FROM (${arrays}) AS u(${aliases.join(", ")})`;
}

function keyJoin(mapping: TableMapping): string {
  return mapping.source.keyColumns
    .map((sourceIndex, position) => {
      const column = columnAt(mapping.columns, sourceIndex);
      return `t.${quoteIdent(column.name)} = u.k${position + 1}::${column.castType}`;
    })
    .join(" AND ");
}

function keyAliases(mapping: TableMapping): string[] {
  return mapping.source.keyColumns.map((_, position) => `k${position + 1}`);
}

function batch(
  sql: string,
  params: ColumnValue[][],
  rows: number,
  description: StatementDescription,
  group: number,
): PlannedStatement {
  return { sql, params, expectedRows: rows, description, batched: true, group, prepare: true };
}

/**
 * A run of inserts as one COPY: the standby parses each value with its type's
 * input function, exactly as an INSERT of the text would, without a statement
 * per row or text arrays to build and take apart. COPY writes identity ALWAYS
 * columns without an OVERRIDING clause, and leaves generated ones out as the
 * column list does.
 */
export function batchedInsert(
  mapping: TableMapping,
  changes: IndexedChange<InsertChange<WritableValue>>[],
  group: number,
): PlannedStatement {
  const sql = cachedSql(
    mapping,
    "copy-in",
    () => `COPY ${mapping.qualified} (${writtenNames(mapping)}) FROM STDIN`,
  );
  const { written } = mapping;
  const data = new CopyTextWriter(changes.length * 64);
  for (const { change } of changes) {
    data.row(written.length, (i) => valueAt(change.values, written[i] as number));
  }
  const description = describe(
    mapping,
    "insert",
    changes.map(({ change }) => insertKey(mapping, change)),
    changes.map(({ index }) => index),
  );
  return {
    sql,
    params: [],
    expectedRows: changes.length,
    description,
    batched: true,
    group,
    prepare: false,
    copyData: data.bytes(),
  };
}

export function batchedDelete(
  mapping: TableMapping,
  changes: IndexedChange<DeleteChange>[],
  group: number,
): PlannedStatement {
  const sql = cachedSql(
    mapping,
    "delete-n",
    () =>
      `DELETE FROM ${mapping.qualified} AS t USING ${unnest(keyAliases(mapping))} WHERE ${keyJoin(mapping)}`,
  );
  const keys = changes.map(({ change }) => change.key);
  const description = describe(
    mapping,
    "delete",
    keys,
    changes.map(({ index }) => index),
  );
  const params = columnArrays(keys, mapping.source.keyColumns.length);
  return batch(sql, params, changes.length, description, group);
}

/** Folded rows by the columns their statement writes: one statement text each. */
function rowsByWrites(mapping: TableMapping, rows: FoldedRow[]): { writes: number[]; rows: FoldedRow[] }[] {
  const bySet = new Map<string, { writes: number[]; rows: FoldedRow[] }>();
  // Rows of a run mostly change the same columns: one like the row before it needs no lookup.
  let last: { columns: number[]; set: { writes: number[]; rows: FoldedRow[] } } | undefined;
  for (const row of rows) {
    if (last !== undefined && sameNumbers(last.columns, row.columns)) {
      last.set.rows.push(row);
      continue;
    }
    const writes = updateWrites(mapping, row.columns);
    const id = writes.join(",");
    let set = bySet.get(id);
    if (set === undefined) {
      set = { writes, rows: [] };
      bySet.set(id, set);
    }
    set.rows.push(row);
    last = { columns: row.columns, set };
  }
  return [...bySet.values()];
}

function sameNumbers(a: number[], b: number[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

function batchedUpdateSql(mapping: TableMapping, writes: number[]): string {
  return cachedSql(mapping, `update-n:${writes.join(",")}`, () => {
    const aliases = [...keyAliases(mapping), ...writes.map((_, position) => `v${position + 1}`)];
    const set = setList(
      mapping,
      writes,
      (position) => `u.v${position + 1}::${columnAt(mapping.columns, writes[position] ?? 0).castType}`,
    );
    return `UPDATE ${mapping.qualified} AS t SET ${set} FROM ${unnest(aliases)} WHERE ${keyJoin(mapping)}`;
  });
}

/** Updates of rows folded by foldUpdates, at most `maxRows` rows a statement; all in one group. */
export function batchedUpdates(
  mapping: TableMapping,
  folded: FoldedRow[],
  group: number,
  maxRows: number,
): PlannedStatement[] {
  return rowsByWrites(mapping, folded).flatMap(({ writes, rows }) => {
    const sql = batchedUpdateSql(mapping, writes);
    const keyWidth = mapping.source.keyColumns.length;
    return chunks(rows, maxRows).map((chunk) => {
      const keys: ColumnValue[][] = [];
      const changeIndices: number[] = [];
      for (const row of chunk) {
        for (const index of row.changeIndices) {
          keys.push(row.key);
          changeIndices.push(index);
        }
      }
      const description = describe(mapping, "update", keys, changeIndices);
      // Straight into one array per column: no row of its own per updated row to transpose afterwards.
      const params = Array.from(
        { length: keyWidth + writes.length },
        () => new Array<ColumnValue>(chunk.length),
      );
      for (let r = 0; r < chunk.length; r++) {
        const row = chunk[r] as FoldedRow;
        for (let k = 0; k < keyWidth; k++) (params[k] as ColumnValue[])[r] = valueAt(row.key, k);
        // writes are some of the row's columns, both ascending: one walk finds each value.
        let position = 0;
        for (let w = 0; w < writes.length; w++) {
          while (position < row.columns.length && row.columns[position] !== writes[w]) position++;
          (params[keyWidth + w] as ColumnValue[])[r] = valueAt(row.values, position);
        }
      }
      return batch(sql, params, chunk.length, description, group);
    });
  });
}
