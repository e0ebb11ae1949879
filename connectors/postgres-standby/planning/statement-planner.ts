import type {
  ApplyChange,
  DeleteChange,
  InsertChange,
  UpdateChange,
  WritableValue,
} from "../../../src/change/change-model.js";
import type { SchemaRef } from "../../../src/change/relation-schema.js";
import { batchedDelete, batchedInsert, batchedUpdates, chunks } from "./batched-statements.js";
import { ddl, sequence, truncate } from "./non-row-statements.js";
import type { IndexedChange, PlannedStatement, ResolveRelation } from "./planned-statement.js";
import { singleDelete, singleInsert, singleUpdate } from "./single-row-statements.js";
import { updateWrites, writesIdentityAlways } from "./statement-parts.js";
import type { TableMapping, TableMappings } from "./table-mapping.js";
import { foldUpdates, mergedUpdate } from "./update-folding.js";

export interface PlanOptions {
  maxRowsPerStatement: number;
  /** Kept by the caller across plans, so each table's mapping and SQL texts are built once. */
  mappings: TableMappings;
}

type MapRelation = (ref: SchemaRef) => TableMapping;

function mapper(resolve: ResolveRelation, mappings: TableMappings): MapRelation {
  return (ref) => {
    const { source, target } = resolve(ref);
    return mappings.of(source, target);
  };
}

type Batchable =
  | ({ kind: "insert" } & IndexedChange<InsertChange<WritableValue>>)
  | ({ kind: "update" } & IndexedChange<UpdateChange>)
  | ({ kind: "delete" } & IndexedChange<DeleteChange>);

function keyChangeOf(mapping: TableMapping, change: UpdateChange): boolean {
  for (const index of change.changedColumns) if (mapping.source.keyColumns.includes(index)) return true;
  return false;
}

/**
 * The changes that may share a statement with their neighbours: inserts,
 * updates that leave the key alone, deletes; updates and deletes only by a
 * primary key, since a table without one needs one statement per row. An
 * update that writes an identity ALWAYS column moves its row, one at a time.
 */
function batchable(change: ApplyChange, index: number, mapping: MapRelation): Batchable | null {
  switch (change.kind) {
    case "insert":
      return { kind: "insert", change, index };
    case "update": {
      const table = mapping(change.relation);
      if (!table.source.hasPrimaryKey || keyChangeOf(table, change)) return null;
      if (writesIdentityAlways(table, updateWrites(table, change.changedColumns))) return null;
      return { kind: "update", change, index };
    }
    case "delete":
      return mapping(change.relation).source.hasPrimaryKey ? { kind: "delete", change, index } : null;
    default:
      return null;
  }
}

function sameRelation(a: SchemaRef, b: SchemaRef): boolean {
  return a.relationId === b.relationId && a.version === b.version;
}

/** The batchable changes of one kind to one table from `start` on; empty if changes[start] is not batchable. */
function batchableRun(changes: ApplyChange[], start: number, mapping: MapRelation): Batchable[] {
  const first = batchable(changes[start] as ApplyChange, start, mapping);
  if (first === null) return [];
  const run: Batchable[] = [first];
  while (start + run.length < changes.length) {
    const next = batchable(changes[start + run.length] as ApplyChange, start + run.length, mapping);
    if (
      next === null ||
      next.kind !== first.kind ||
      !sameRelation(next.change.relation, first.change.relation)
    ) {
      break;
    }
    run.push(next);
  }
  return run;
}

/**
 * Plans the statements that apply `changes` (one source transaction, or a
 * part of one) to the standby. Consecutive changes of one kind to one table
 * share statements; a key change, and any update or delete of a table without
 * primary key, gets a statement of its own, in source order.
 */
export function planStatements(
  changes: ApplyChange[],
  resolve: ResolveRelation,
  options: PlanOptions,
): PlannedStatement[] {
  if (!Number.isInteger(options.maxRowsPerStatement) || options.maxRowsPerStatement < 1) {
    throw new Error(`maxRowsPerStatement must be a positive integer, not ${options.maxRowsPerStatement}`);
  }
  const mapping = mapper(resolve, options.mappings);
  const statements: PlannedStatement[] = [];
  let group = 0;
  let position = 0;
  while (position < changes.length) {
    const run = batchableRun(changes, position, mapping);
    if (run.length === 0) {
      statements.push(
        ...exactStatements(changes[position] as ApplyChange, position, group, resolve, mapping),
      );
      group += 1;
      position += 1;
      continue;
    }
    const planned = planRun(run, mapping, group, options.maxRowsPerStatement);
    statements.push(...planned.statements);
    group = planned.nextGroup;
    position += run.length;
  }
  return statements;
}

function ofKind<K extends Batchable["kind"]>(run: Batchable[], kind: K): Extract<Batchable, { kind: K }>[] {
  return run.filter((item): item is Extract<Batchable, { kind: K }> => item.kind === kind);
}

function planRun(
  run: Batchable[],
  mapping: MapRelation,
  group: number,
  maxRows: number,
): { statements: PlannedStatement[]; nextGroup: number } {
  const first = run[0] as Batchable;
  const table = mapping(first.change.relation);
  switch (first.kind) {
    case "update":
      return { statements: planUpdates(table, ofKind(run, "update"), group, maxRows), nextGroup: group + 1 };
    case "insert":
      return planChunks(table, ofKind(run, "insert"), group, maxRows, singleInsert, batchedInsert);
    case "delete":
      return planChunks(table, ofKind(run, "delete"), group, maxRows, singleDelete, batchedDelete);
  }
}

/** Folding may reorder a run's rows, so the run falls back as a whole: one group. */
function planUpdates(
  mapping: TableMapping,
  updates: IndexedChange<UpdateChange>[],
  group: number,
  maxRows: number,
): PlannedStatement[] {
  const folded = foldUpdates(updates);
  const [row] = folded;
  if (folded.length === 1 && row !== undefined) {
    // One row: the folded update is exactly what the changes do one by one.
    const relation = (updates[0] as IndexedChange<UpdateChange>).change.relation;
    return [singleUpdate(mapping, mergedUpdate(relation, row), row.changeIndices, group)];
  }
  return batchedUpdates(mapping, folded, group, maxRows);
}

/**
 * Inserts and deletes keep source order within and across chunks, so each
 * chunk can fall back on its own. A chunk of one needs no savepoint.
 */
function planChunks<C>(
  mapping: TableMapping,
  items: IndexedChange<C>[],
  group: number,
  maxRows: number,
  single: (mapping: TableMapping, change: C, index: number, group: number) => PlannedStatement,
  batched: (mapping: TableMapping, changes: IndexedChange<C>[], group: number) => PlannedStatement,
): { statements: PlannedStatement[]; nextGroup: number } {
  const statements = chunks(items, maxRows).map((chunk, offset) => {
    const [only] = chunk;
    return chunk.length === 1 && only !== undefined
      ? single(mapping, only.change, only.index, group + offset)
      : batched(mapping, chunk, group + offset);
  });
  return { statements, nextGroup: group + statements.length };
}

function exactStatements(
  change: ApplyChange,
  index: number,
  group: number,
  resolve: ResolveRelation,
  mapping: MapRelation,
): PlannedStatement[] {
  switch (change.kind) {
    case "insert":
      return [singleInsert(mapping(change.relation), change, index, group)];
    case "update":
      return [singleUpdate(mapping(change.relation), change, [index], group)];
    case "delete":
      return [singleDelete(mapping(change.relation), change, index, group)];
    case "truncate":
      return [truncate(change, resolve, index, group)];
    case "ddl":
      return [ddl(change, index, group)];
    case "sequence":
      return change.sequences.map((position) => sequence(position, index, group));
  }
}

/**
 * Plans one statement per change, in order: exactly what the source did, one
 * row at a time. The fallback for a batch that failed, and the plan for changes
 * that cannot be batched. `firstIndex` is the index of `changes[0]` in the
 * transaction, so descriptions name the source changes.
 */
export function planChangeByChange(
  changes: ApplyChange[],
  resolve: ResolveRelation,
  mappings: TableMappings,
  firstIndex: number,
  firstGroup: number,
): PlannedStatement[] {
  const mapping = mapper(resolve, mappings);
  return changes.flatMap((change, offset) =>
    exactStatements(change, firstIndex + offset, firstGroup + offset, resolve, mapping),
  );
}
