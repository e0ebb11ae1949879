import type { ColumnValue, UpdateChange } from "../../../src/change/change-model.js";
import type { SchemaRef } from "../../../src/change/relation-schema.js";
import type { IndexedChange } from "./planned-statement.js";
import { valueAt } from "./statement-parts.js";

/** One row's updates within a run, folded: later values win, column sets merge. */
export interface FoldedRow {
  key: ColumnValue[];
  /** Source column index → new value. */
  values: Map<number, ColumnValue>;
  changeIndices: number[];
}

/**
 * Folds a run of updates to one table, none of which changes a key, into one
 * row per key. Within such a run every update of a row leaves its key alone,
 * so the row's last state is the merge of its updates in order; other rows are
 * not touched by them. The final state equals change-by-change application;
 * only the order in which rows pass through intermediate states differs, which
 * matters for UNIQUE checks alone, and those are what the fallback catches.
 */
export function foldUpdates(changes: IndexedChange<UpdateChange>[]): FoldedRow[] {
  const rows = new Map<ColumnValue, FoldedRow>();
  for (const { change, index } of changes) {
    // Every key of a run has the table's key arity, so a one-column key can stand for itself.
    const id = change.key.length === 1 ? (change.key[0] as ColumnValue) : JSON.stringify(change.key);
    let row = rows.get(id);
    if (row === undefined) {
      row = { key: change.key, values: new Map(), changeIndices: [] };
      rows.set(id, row);
    }
    change.changedColumns.forEach((column, position) => {
      row.values.set(column, valueAt(change.values, position));
    });
    row.changeIndices.push(index);
  }
  return [...rows.values()];
}

/** The folded row's changed columns in source column order. */
export function changedColumnsOf(row: FoldedRow): number[] {
  return [...row.values.keys()].sort((a, b) => a - b);
}

/** The one update that does what the folded updates of one row did. */
export function mergedUpdate(relation: SchemaRef, row: FoldedRow): UpdateChange {
  const changedColumns = changedColumnsOf(row);
  return {
    kind: "update",
    relation,
    key: row.key,
    changedColumns,
    values: changedColumns.map((index) => row.values.get(index) ?? null),
  };
}
