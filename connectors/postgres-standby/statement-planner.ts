import type {
  Change,
  ColumnValue,
  DeleteChange,
  InsertChange,
  SequencePosition,
  UpdateChange,
} from "../../src/change/change-model.js";
import type { RelationSchema, SchemaRef } from "../../src/change/relation-schema.js";
import { quoteIdent, quoteQualified } from "../../src/sql/quote.js";
import { SchemaDriftError } from "./drift-error.js";
import type { TargetColumn, TargetTable } from "./standby-catalog.js";

export interface ResolvedRelation {
  source: RelationSchema;
  target: TargetTable;
}

export type ResolveRelation = (ref: SchemaRef) => ResolvedRelation;

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
  /** pg parameters: text arrays for a batched statement, scalars otherwise. */
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
  /** For DDL: the search_path the command ran under on the source. */
  searchPath?: string;
}

export interface PlanOptions {
  maxRowsPerStatement: number;
}

/**
 * How source columns land on one standby table. Built once per
 * (source definition, standby definition) pair and then reused, so the SQL
 * text of a shape is built once as well.
 */
interface TableMapping {
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
  sql: Map<string, string>;
}

const mappings = new WeakMap<TargetTable, WeakMap<RelationSchema, TableMapping>>();

function tableMapping(source: RelationSchema, target: TargetTable): TableMapping {
  let bySource = mappings.get(target);
  if (bySource === undefined) {
    bySource = new WeakMap();
    mappings.set(target, bySource);
  }
  let mapping = bySource.get(source);
  if (mapping === undefined) {
    mapping = buildMapping(source, target);
    bySource.set(source, mapping);
  }
  return mapping;
}

/**
 * Checks that the standby table can take the source relation's changes (every
 * source column exists, the primary keys agree); throws SchemaDriftError if not.
 */
export function checkRelation(source: RelationSchema, target: TargetTable): void {
  tableMapping(source, target);
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
  if (source.hasPrimaryKey) {
    // Batching and folding by key are only exact when the key is unique on the standby too.
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

function columnAt(columns: TargetColumn[], index: number): TargetColumn {
  const column = columns[index];
  if (column === undefined)
    throw new Error(`column index ${index} is outside the relation's ${columns.length}`);
  return column;
}

function valueAt(values: ColumnValue[], index: number): ColumnValue {
  const value = values[index];
  if (value === undefined)
    throw new Error(`value index ${index} is outside the change's ${values.length} values`);
  return value;
}

function cachedSql(mapping: TableMapping, shape: string, build: () => string): string {
  let sql = mapping.sql.get(shape);
  if (sql === undefined) {
    sql = build();
    mapping.sql.set(shape, sql);
  }
  return sql;
}

const TEXT = "pg_catalog.text";

/** `$n` as the column's type: text in, parsed by the standby type's own input function. */
function scalar(n: number, column: TargetColumn): string {
  return `$${n}::${TEXT}::${column.castType}`;
}

function keyChangeOf(mapping: TableMapping, change: UpdateChange): boolean {
  return change.changedColumns.some((index) => mapping.source.keyColumns.includes(index));
}

/** Source column indexes an UPDATE writes: its changed columns the standby does not generate. */
function updateWrites(mapping: TableMapping, changedColumns: number[]): number[] {
  return changedColumns.filter((index) => !columnAt(mapping.columns, index).generated);
}

/**
 * The SET list of an UPDATE. An UPDATE whose every changed column is generated
 * on the standby still rewrites the row, as the source did, and still proves
 * that the row exists: it assigns a column to itself, one that UPDATE may set
 * (an identity ALWAYS column "can only be updated to DEFAULT") where there is one.
 */
function setList(mapping: TableMapping, writes: number[], valueExpr: (position: number) => string): string {
  if (writes.length === 0) {
    const settable = mapping.written.find((index) => !columnAt(mapping.columns, index).identityAlways);
    const self = quoteIdent(columnAt(mapping.columns, settable ?? mapping.written[0] ?? 0).name);
    return `${self} = t.${self}`;
  }
  return writes
    .map((index, position) => `${quoteIdent(columnAt(mapping.columns, index).name)} = ${valueExpr(position)}`)
    .join(", ");
}

function insertColumns(mapping: TableMapping): string {
  const names = mapping.written.map((index) => quoteIdent(columnAt(mapping.columns, index).name)).join(", ");
  return `INSERT INTO ${mapping.qualified} (${names})${mapping.overriding ? " OVERRIDING SYSTEM VALUE" : ""}`;
}

function insertKey(mapping: TableMapping, change: InsertChange): ColumnValue[] {
  return mapping.source.keyColumns.map((index) => valueAt(change.values, index));
}

function describe(
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

function singleInsert(
  mapping: TableMapping,
  change: InsertChange,
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
  return {
    sql,
    params: mapping.written.map((sourceIndex) => valueAt(change.values, sourceIndex)),
    expectedRows: 1,
    description: describe(mapping, "insert", [insertKey(mapping, change)], [index]),
    batched: false,
    group,
    prepare: true,
  };
}

function singleUpdate(
  mapping: TableMapping,
  change: UpdateChange,
  changeIndices: number[],
  group: number,
): PlannedStatement {
  const writes = updateWrites(mapping, change.changedColumns);
  const newValues = writes.map((sourceIndex) =>
    valueAt(change.values, change.changedColumns.indexOf(sourceIndex)),
  );
  const set = (offset: number) =>
    setList(mapping, writes, (position) =>
      scalar(offset + position + 1, columnAt(mapping.columns, writes[position] ?? 0)),
    );
  const description = describe(
    mapping,
    "update",
    changeIndices.map(() => change.key),
    changeIndices,
  );
  if (mapping.source.hasPrimaryKey) {
    const sql = cachedSql(mapping, `update-1:${writes.join(",")}`, () => {
      const where = mapping.source.keyColumns
        .map(
          (sourceIndex, position) =>
            `t.${quoteIdent(columnAt(mapping.columns, sourceIndex).name)} = ${scalar(writes.length + position + 1, columnAt(mapping.columns, sourceIndex))}`,
        )
        .join(" AND ");
      return `UPDATE ${mapping.qualified} AS t SET ${set(0)} WHERE ${where}`;
    });
    return {
      sql,
      params: [...newValues, ...change.key],
      expectedRows: 1,
      description,
      batched: false,
      group,
      prepare: true,
    };
  }
  const match = rowMatch(mapping, change.key, 1);
  const sql = cachedSql(mapping, `update-row:${nullPattern(change.key)}:${writes.join(",")}`, () => {
    return `${victim(mapping, match.sql)}UPDATE ${mapping.qualified} AS t SET ${set(match.params.length)} FROM victim WHERE ${VICTIM_ROW}`;
  });
  return {
    sql,
    params: [...match.params, ...newValues],
    expectedRows: 1,
    description,
    batched: false,
    group,
    prepare: true,
  };
}

function singleDelete(
  mapping: TableMapping,
  change: DeleteChange,
  index: number,
  group: number,
): PlannedStatement {
  const description = describe(mapping, "delete", [change.key], [index]);
  if (mapping.source.hasPrimaryKey) {
    const sql = cachedSql(mapping, "delete-1", () => {
      const where = mapping.source.keyColumns
        .map(
          (sourceIndex, position) =>
            `t.${quoteIdent(columnAt(mapping.columns, sourceIndex).name)} = ${scalar(position + 1, columnAt(mapping.columns, sourceIndex))}`,
        )
        .join(" AND ");
      return `DELETE FROM ${mapping.qualified} AS t WHERE ${where}`;
    });
    return {
      sql,
      params: [...change.key],
      expectedRows: 1,
      description,
      batched: false,
      group,
      prepare: true,
    };
  }
  const match = rowMatch(mapping, change.key, 1);
  const sql = cachedSql(
    mapping,
    `delete-row:${nullPattern(change.key)}`,
    () =>
      `${victim(mapping, match.sql)}DELETE FROM ${mapping.qualified} AS t USING victim WHERE ${VICTIM_ROW}`,
  );
  return { sql, params: match.params, expectedRows: 1, description, batched: false, group, prepare: true };
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

function columnArrays(rows: ColumnValue[][], width: number): ColumnValue[][] {
  return Array.from({ length: width }, (_, column) => rows.map((row) => valueAt(row, column)));
}

function chunks<T>(items: T[], size: number): T[][] {
  const result: T[][] = [];
  for (let start = 0; start < items.length; start += size) result.push(items.slice(start, start + size));
  return result;
}

function batchedInsert(
  mapping: TableMapping,
  changes: { change: InsertChange; index: number }[],
  group: number,
) {
  const sql = cachedSql(mapping, "insert-n", () => {
    const aliases = mapping.written.map((_, position) => `v${position + 1}`);
    const select = mapping.written
      .map(
        (sourceIndex, position) => `u.v${position + 1}::${columnAt(mapping.columns, sourceIndex).castType}`,
      )
      .join(", ");
    return `${insertColumns(mapping)} SELECT ${select} FROM ${unnest(aliases)}`;
  });
  const rows = changes.map(({ change }) =>
    mapping.written.map((sourceIndex) => valueAt(change.values, sourceIndex)),
  );
  return {
    sql,
    params: columnArrays(rows, mapping.written.length),
    expectedRows: changes.length,
    description: describe(
      mapping,
      "insert",
      changes.map(({ change }) => insertKey(mapping, change)),
      changes.map(({ index }) => index),
    ),
    batched: true,
    group,
    prepare: true,
  } satisfies PlannedStatement;
}

function batchedDelete(
  mapping: TableMapping,
  changes: { change: DeleteChange; index: number }[],
  group: number,
) {
  const sql = cachedSql(
    mapping,
    "delete-n",
    () =>
      `DELETE FROM ${mapping.qualified} AS t USING ${unnest(keyAliases(mapping))} WHERE ${keyJoin(mapping)}`,
  );
  const keys = changes.map(({ change }) => change.key);
  return {
    sql,
    params: columnArrays(keys, mapping.source.keyColumns.length),
    expectedRows: changes.length,
    description: describe(
      mapping,
      "delete",
      keys,
      changes.map(({ index }) => index),
    ),
    batched: true,
    group,
    prepare: true,
  } satisfies PlannedStatement;
}

/** One row's updates within a run, folded: later values win, column sets merge. */
interface FoldedRow {
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
export function foldUpdates(changes: { change: UpdateChange; index: number }[]): FoldedRow[] {
  const rows = new Map<string, FoldedRow>();
  for (const { change, index } of changes) {
    const id = JSON.stringify(change.key);
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

function batchedUpdates(
  mapping: TableMapping,
  changes: { change: UpdateChange; index: number }[],
  group: number,
  maxRows: number,
): PlannedStatement[] {
  const bySet = new Map<string, { writes: number[]; rows: FoldedRow[] }>();
  for (const row of foldUpdates(changes)) {
    const changed = [...row.values.keys()].sort((a, b) => a - b);
    const writes = updateWrites(mapping, changed);
    const id = writes.join(",");
    let set = bySet.get(id);
    if (set === undefined) {
      set = { writes, rows: [] };
      bySet.set(id, set);
    }
    set.rows.push(row);
  }
  const statements: PlannedStatement[] = [];
  for (const { writes, rows } of bySet.values()) {
    const sql = cachedSql(mapping, `update-n:${writes.join(",")}`, () => {
      const aliases = [...keyAliases(mapping), ...writes.map((_, position) => `v${position + 1}`)];
      const set = setList(
        mapping,
        writes,
        (position) => `u.v${position + 1}::${columnAt(mapping.columns, writes[position] ?? 0).castType}`,
      );
      return `UPDATE ${mapping.qualified} AS t SET ${set} FROM ${unnest(aliases)} WHERE ${keyJoin(mapping)}`;
    });
    for (const chunk of chunks(rows, maxRows)) {
      const tuples = chunk.map((row) => [
        ...row.key,
        ...writes.map((index) => row.values.get(index) ?? null),
      ]);
      statements.push({
        sql,
        params: columnArrays(tuples, mapping.source.keyColumns.length + writes.length),
        expectedRows: chunk.length,
        description: describe(
          mapping,
          "update",
          chunk.flatMap((row) => row.changeIndices.map(() => row.key)),
          chunk.flatMap((row) => row.changeIndices),
        ),
        batched: true,
        group,
        prepare: true,
      });
    }
  }
  return statements;
}

function truncate(
  change: Extract<Change, { kind: "truncate" }>,
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
function sequence(position: SequencePosition, index: number, group: number): PlannedStatement {
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

function ddl(change: Extract<Change, { kind: "ddl" }>, index: number, group: number): PlannedStatement {
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

function sameRelation(a: SchemaRef, b: SchemaRef): boolean {
  return a.relationId === b.relationId && a.version === b.version;
}

type Batchable =
  | { kind: "insert"; change: InsertChange; index: number }
  | { kind: "update"; change: UpdateChange; index: number }
  | { kind: "delete"; change: DeleteChange; index: number };

/**
 * The changes that may share a statement with their neighbours: inserts,
 * updates that leave the key alone, deletes; updates and deletes only by a
 * primary key, since a table without one needs one statement per row.
 */
function batchable(change: Change, index: number, resolve: ResolveRelation): Batchable | null {
  switch (change.kind) {
    case "insert":
      return { kind: "insert", change, index };
    case "update": {
      const mapping = mappingOf(resolve, change.relation);
      if (!mapping.source.hasPrimaryKey || keyChangeOf(mapping, change)) return null;
      return { kind: "update", change, index };
    }
    case "delete":
      return mappingOf(resolve, change.relation).source.hasPrimaryKey
        ? { kind: "delete", change, index }
        : null;
    default:
      return null;
  }
}

function mappingOf(resolve: ResolveRelation, ref: SchemaRef): TableMapping {
  const { source, target } = resolve(ref);
  return tableMapping(source, target);
}

/**
 * Plans the statements that apply `changes` (one source transaction, or a
 * part of one) to the standby. Consecutive changes of one kind to one table
 * share statements; a key change, and any update or delete of a table without
 * primary key, gets a statement of its own, in source order.
 */
export function planStatements(
  changes: Change[],
  resolve: ResolveRelation,
  options: PlanOptions,
): PlannedStatement[] {
  if (!Number.isInteger(options.maxRowsPerStatement) || options.maxRowsPerStatement < 1) {
    throw new Error(`maxRowsPerStatement must be a positive integer, not ${options.maxRowsPerStatement}`);
  }
  const statements: PlannedStatement[] = [];
  let group = 0;
  let position = 0;
  while (position < changes.length) {
    const change = changes[position] as Change;
    const first = batchable(change, position, resolve);
    if (first === null) {
      statements.push(...planChangeByChange([change], resolve, position, group));
      group += 1;
      position += 1;
      continue;
    }
    const run: Batchable[] = [first];
    while (position + run.length < changes.length) {
      const next = batchable(changes[position + run.length] as Change, position + run.length, resolve);
      if (
        next === null ||
        next.kind !== first.kind ||
        !sameRelation(next.change.relation, first.change.relation)
      ) {
        break;
      }
      run.push(next);
    }
    const mapping = mappingOf(resolve, first.change.relation);
    const planned = planRun(mapping, first, run, group, options.maxRowsPerStatement);
    statements.push(...planned.statements);
    group = planned.nextGroup;
    position += run.length;
  }
  return statements;
}

function planRun(
  mapping: TableMapping,
  first: Batchable,
  run: Batchable[],
  group: number,
  maxRows: number,
): { statements: PlannedStatement[]; nextGroup: number } {
  const kind = first.kind;
  if (kind === "update") {
    const updates = run.flatMap((item) => (item.kind === "update" ? [item] : []));
    const folded = foldUpdates(updates);
    if (folded.length === 1) {
      // One row: the folded update is exactly what the changes do one by one.
      const [row] = folded as [FoldedRow];
      const changedColumns = [...row.values.keys()].sort((a, b) => a - b);
      const merged: UpdateChange = {
        kind: "update",
        relation: first.change.relation,
        key: row.key,
        changedColumns,
        values: changedColumns.map((index) => row.values.get(index) ?? null),
      };
      return { statements: [singleUpdate(mapping, merged, row.changeIndices, group)], nextGroup: group + 1 };
    }
    return { statements: batchedUpdates(mapping, updates, group, maxRows), nextGroup: group + 1 };
  }
  // Inserts and deletes keep source order within and across chunks, so each
  // chunk can fall back on its own.
  const statements: PlannedStatement[] = [];
  let next = group;
  for (const chunk of chunks(run, maxRows)) {
    if (chunk.length === 1) {
      const [only] = chunk as [Batchable];
      statements.push(
        only.kind === "insert"
          ? singleInsert(mapping, only.change, only.index, next)
          : singleDelete(mapping, only.change as DeleteChange, only.index, next),
      );
    } else if (kind === "insert") {
      statements.push(
        batchedInsert(
          mapping,
          chunk.flatMap((item) => (item.kind === "insert" ? [item] : [])),
          next,
        ),
      );
    } else {
      statements.push(
        batchedDelete(
          mapping,
          chunk.flatMap((item) => (item.kind === "delete" ? [item] : [])),
          next,
        ),
      );
    }
    next += 1;
  }
  return { statements, nextGroup: next };
}

/**
 * Plans one statement per change, in order: exactly what the source did, one
 * row at a time. The fallback for a batch that failed, and the plan for changes
 * that cannot be batched. `firstIndex` is the index of `changes[0]` in the
 * transaction, so descriptions name the source changes.
 */
export function planChangeByChange(
  changes: Change[],
  resolve: ResolveRelation,
  firstIndex: number,
  firstGroup: number,
): PlannedStatement[] {
  const statements: PlannedStatement[] = [];
  changes.forEach((change, offset) => {
    const index = firstIndex + offset;
    const group = firstGroup + offset;
    switch (change.kind) {
      case "insert":
        statements.push(singleInsert(mappingOf(resolve, change.relation), change, index, group));
        break;
      case "update":
        statements.push(singleUpdate(mappingOf(resolve, change.relation), change, [index], group));
        break;
      case "delete":
        statements.push(singleDelete(mappingOf(resolve, change.relation), change, index, group));
        break;
      case "truncate":
        statements.push(truncate(change, resolve, index, group));
        break;
      case "ddl":
        statements.push(ddl(change, index, group));
        break;
      case "sequence":
        for (const position of change.sequences) statements.push(sequence(position, index, group));
        break;
    }
  });
  return statements;
}
