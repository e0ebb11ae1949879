import type { ResolvedRelation } from "../../../connectors/postgres-standby/planning/planned-statement.js";
import type { TargetColumn, TargetTable } from "../../../connectors/postgres-standby/standby-catalog.js";
import type { Change, ColumnValue } from "../../../src/change/change-model.js";
import type { RelationSchema, SchemaRef } from "../../../src/change/relation-schema.js";

export interface ColumnSpec {
  name: string;
  type: string;
  generated?: boolean;
  identityAlways?: boolean;
  hasEquality?: boolean;
}

/** A source definition and the matching standby definition of one table. */
export function table(
  relationId: number,
  schema: string,
  name: string,
  columns: ColumnSpec[],
  primaryKey: string[] | null,
): ResolvedRelation & { ref: SchemaRef } {
  const keyColumns =
    primaryKey === null
      ? columns.map((_, index) => index)
      : primaryKey.map((key) => columns.findIndex((column) => column.name === key));
  const source: RelationSchema = {
    relationId,
    schema,
    table: name,
    replicaIdentity: primaryKey === null ? "full" : "default",
    columns: columns.map((column) => ({
      name: column.name,
      typeOid: 0,
      typeName: column.type,
      typeModifier: -1,
    })),
    keyColumns,
    hasPrimaryKey: primaryKey !== null,
  };
  const targetColumns: TargetColumn[] = columns.map((column, index) => ({
    name: column.name,
    attnum: index + 1,
    typeOid: 0,
    typeName: column.type,
    castType: column.type,
    generated: column.generated ?? false,
    identityAlways: column.identityAlways ?? false,
    hasEquality: column.hasEquality ?? true,
  }));
  const target: TargetTable = {
    schema,
    table: name,
    oid: relationId,
    columns: targetColumns,
    columnsByName: new Map(targetColumns.map((column) => [column.name, column])),
    primaryKey,
  };
  return { ref: { relationId, version: 1 }, source, target };
}

export function resolver(...tables: (ResolvedRelation & { ref: SchemaRef })[]) {
  return (ref: SchemaRef): ResolvedRelation => {
    const found = tables.find((t) => t.ref.relationId === ref.relationId && t.ref.version === ref.version);
    if (found === undefined) throw new Error(`no relation ${ref.relationId}`);
    return found;
  };
}

export const insert = (relation: SchemaRef, values: ColumnValue[]): Change => ({
  kind: "insert",
  relation,
  values,
});

export const update = (
  relation: SchemaRef,
  key: ColumnValue[],
  changedColumns: number[],
  values: ColumnValue[],
): Change => ({ kind: "update", relation, key, changedColumns, values });

export const remove = (relation: SchemaRef, key: ColumnValue[]): Change => ({
  kind: "delete",
  relation,
  key,
});
