import type { RelationSchema } from "../../../src/change/relation-schema.js";
import { quoteQualified } from "../../../src/sql/quote.js";
import { SchemaDriftError } from "../drift-error.js";
import type { TargetColumn, TargetTable } from "../standby-catalog.js";

/**
 * How source columns land on one standby table. Built once per
 * (source definition, standby definition) pair and then reused, so the SQL
 * text of a shape is built once as well.
 */
export interface TableMapping {
  source: RelationSchema;
  target: TargetTable;
  qualified: string;
  /** Standby column of each source column (by name). */
  columns: TargetColumn[];
  /** Source column indexes written on INSERT: every one the standby does not generate. */
  written: number[];
  overriding: boolean;
  keyNames: string[];
  /** Source column indexes used to find a row of a table without primary key. */
  matchColumns: number[];
  /** SQL text by statement shape. */
  sql: Map<string, string>;
}

/**
 * The mappings one applier has built, keyed by the identity of both
 * definitions. A schema change on either side comes as a new object (the
 * standby catalog reads a table again after DDL invalidates it, the schema
 * topic sends each relation version once), so it gets a new mapping, and an
 * outdated mapping is dropped with the definitions it was built from.
 */
export class TableMappings {
  private readonly byTarget = new WeakMap<TargetTable, WeakMap<RelationSchema, TableMapping>>();

  /** Throws SchemaDriftError if the standby table cannot take the source relation's changes. */
  of(source: RelationSchema, target: TargetTable): TableMapping {
    let bySource = this.byTarget.get(target);
    if (bySource === undefined) {
      bySource = new WeakMap();
      this.byTarget.set(target, bySource);
    }
    let mapping = bySource.get(source);
    if (mapping === undefined) {
      mapping = buildMapping(source, target);
      bySource.set(source, mapping);
    }
    return mapping;
  }
}

export function columnAt(columns: TargetColumn[], index: number): TargetColumn {
  const column = columns[index];
  if (column === undefined)
    throw new Error(`column index ${index} is outside the relation's ${columns.length}`);
  return column;
}

function drift(target: TargetTable, column: string | null, problem: string): SchemaDriftError {
  return new SchemaDriftError({ schema: target.schema, table: target.table, column, problem });
}

function buildMapping(source: RelationSchema, target: TargetTable): TableMapping {
  const columns = source.columns.map((column) => {
    const found = target.columnsByName.get(column.name);
    if (found === undefined)
      throw drift(target, column.name, "the source has this column, the standby lacks it");
    return found;
  });
  const written = columns.flatMap((column, index) => (column.generated ? [] : [index]));
  if (written.length === 0) throw drift(target, null, "the standby generates every column the source sends");
  const keyNames = source.keyColumns.map((index) => columnAt(columns, index).name);
  if (source.hasPrimaryKey) checkPrimaryKey(target, keyNames);
  const matchColumns = source.keyColumns.filter((index) => !columnAt(columns, index).generated);
  if (matchColumns.length === 0) throw drift(target, null, "the standby generates every key column");
  return {
    source,
    target,
    qualified: quoteQualified(target.schema, target.table),
    columns,
    written,
    overriding: written.some((index) => columnAt(columns, index).identityAlways),
    keyNames,
    matchColumns,
    sql: new Map(),
  };
}

/** Batching and folding by key are only exact when the key is unique on the standby too. */
function checkPrimaryKey(target: TargetTable, keyNames: string[]): void {
  const standbyKey = target.primaryKey ?? [];
  const same = standbyKey.length === keyNames.length && keyNames.every((name) => standbyKey.includes(name));
  if (!same) {
    throw drift(
      target,
      null,
      `the source's primary key is (${keyNames.join(", ")}), the standby's is (${standbyKey.join(", ")})`,
    );
  }
}
