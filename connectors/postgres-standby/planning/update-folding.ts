import type { ColumnValue, UpdateChange } from "../../../src/change/change-model.js";
import type { SchemaRef } from "../../../src/change/relation-schema.js";
import type { IndexedChange } from "./planned-statement.js";
import { valueAt } from "./statement-parts.js";

/** One row's updates within a run, folded: later values win, column sets merge. */
export interface FoldedRow {
  key: ColumnValue[];
  /** Source column indexes the row's updates changed, ascending. */
  columns: number[];
  /** Their new values, in the same order. */
  values: ColumnValue[];
  changeIndices: number[];
}

/**
 * Folds a run of updates to one table, none of which changes a key, into one
 * row per key. Within such a run every update of a row leaves its key alone,
 * so the row's last state is the merge of its updates in order; other rows are
 * not touched by them. The final state equals change-by-change application;
 * only the order in which rows pass through intermediate states differs, which
 * matters for UNIQUE checks alone, and those are what the fallback catches.
 *
 * A row updated once (nearly every row of a catch-up) keeps its change's own
 * arrays: a run folds with no allocation per row but the row itself.
 */
export function foldUpdates(changes: IndexedChange<UpdateChange>[]): FoldedRow[] {
  const rows = new Map<ColumnValue, FoldedRow>();
  for (const { change, index } of changes) {
    // Every key of a run has the table's key arity, so a one-column key can stand for itself.
    const id = change.key.length === 1 ? (change.key[0] as ColumnValue) : JSON.stringify(change.key);
    const { changedColumns, values } = change;
    // Fewer values than changed columns: valueAt refuses it, naming the index.
    if (values.length < changedColumns.length) valueAt(values, values.length);
    const row = rows.get(id);
    if (row === undefined) {
      rows.set(id, { key: change.key, columns: changedColumns, values, changeIndices: [index] });
    } else {
      merge(row, changedColumns, values);
      row.changeIndices.push(index);
    }
  }
  return [...rows.values()];
}

/** The one update that does what the folded updates of one row did. */
export function mergedUpdate(relation: SchemaRef, row: FoldedRow): UpdateChange {
  return { kind: "update", relation, key: row.key, changedColumns: row.columns, values: row.values };
}

/** Merges a later update's columns (ascending, as every update's) into the row's: new arrays, since the first may be a change's own. */
function merge(row: FoldedRow, columns: number[], values: ColumnValue[]): void {
  const mergedColumns: number[] = [];
  const mergedValues: ColumnValue[] = [];
  let a = 0;
  let b = 0;
  while (a < row.columns.length || b < columns.length) {
    const earlier = row.columns[a];
    const later = columns[b];
    if (later === undefined || (earlier !== undefined && earlier < later)) {
      mergedColumns.push(earlier as number);
      mergedValues.push(valueAt(row.values, a++));
    } else {
      // The later update's value wins where both changed the column.
      if (earlier === later) a++;
      mergedColumns.push(later);
      mergedValues.push(valueAt(values, b++));
    }
  }
  row.columns = mergedColumns;
  row.values = mergedValues;
}
