import type { ColumnValue } from "../../../src/change/change-model.js";
import type { RelationSchema, SchemaRef } from "../../../src/change/relation-schema.js";
import type { TargetTable } from "../standby-catalog.js";

export interface ResolvedRelation {
  source: RelationSchema;
  target: TargetTable;
}

export type ResolveRelation = (ref: SchemaRef) => ResolvedRelation;

/** A source change and its index in the list given to the planner. */
export interface IndexedChange<C> {
  change: C;
  index: number;
}

export type StatementKind = "insert" | "update" | "delete" | "truncate" | "ddl" | "sequence";

export interface StatementDescription {
  kind: StatementKind;
  /** Tables (or sequences) the statement writes. */
  tables: { schema: string; table: string }[];
  /** Names of the key columns, for reports; empty for TRUNCATE, DDL and sequences. */
  keyColumns: string[];
  /** The key of each source change covered (for an INSERT, the new row's key), in change order. */
  keys: ColumnValue[][];
  /** Indices of the source changes applied (into the list given to the planner), grouped by row for a folded UPDATE. */
  changeIndices: number[];
}

export interface PlannedStatement {
  sql: string;
  /** pg parameters: text arrays for a batched statement, scalars otherwise; none for COPY. */
  params: ColumnValue[][] | ColumnValue[];
  /** Rows the statement must affect, or null where the count means nothing (TRUNCATE, DDL, setval). */
  expectedRows: number | null;
  description: StatementDescription;
  /**
   * True when the statement applies several rows at once and so may fail where
   * change-by-change application in source order succeeds (a UNIQUE value
   * swapped between rows). Such statements run under a savepoint.
   */
  batched: boolean;
  /**
   * Batched statements with the same group run under one savepoint and fall
   * back together: their changes form one contiguous range of source changes
   * (folding may move a change across statements of its group).
   */
  group: number;
  /** Send as a named prepared statement: the text repeats across transactions. */
  prepare: boolean;
  /** For `COPY … FROM STDIN`: its rows, in COPY's text format (src/sql/copy-text.ts). */
  copyData?: Buffer;
  /** For DDL: the search_path the command ran under on the source. */
  searchPath?: string;
}
