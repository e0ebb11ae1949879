// Source definitions and changes as an applier receives them, for tests that drive the
// TransactionApplier against a real standby without a capture in front of it.
import type { Change, ColumnValue } from "../../src/change/change-model.js";
import type { RelationSchema, SchemaRef } from "../../src/change/relation-schema.js";

/** The schema topic's side: source definitions by relation id; the standby tables are created separately. */
export class SourceRelations {
  private readonly schemas = new Map<number, RelationSchema>();

  constructor(private nextRelationId: number) {}

  relation(
    schema: string,
    table: string,
    columns: [name: string, type: string][],
    primaryKey: string[] | null,
  ): SchemaRef {
    const relationId = this.nextRelationId++;
    this.schemas.set(relationId, {
      relationId,
      schema,
      table,
      replicaIdentity: primaryKey === null ? "full" : "default",
      columns: columns.map(([name, typeName]) => ({ name, typeOid: 0, typeName, typeModifier: -1 })),
      keyColumns:
        primaryKey === null
          ? columns.map((_, i) => i)
          : primaryKey.map((key) => columns.findIndex(([name]) => name === key)),
      hasPrimaryKey: primaryKey !== null,
    });
    return { relationId, version: 1 };
  }

  /** For TransactionApplierOptions.schemas. */
  readonly lookup = (ref: SchemaRef): RelationSchema => {
    const found = this.schemas.get(ref.relationId);
    if (found === undefined) throw new Error(`unknown relation ${ref.relationId}`);
    return found;
  };
}

export const ins = (relation: SchemaRef, values: ColumnValue[]): Change => ({
  kind: "insert",
  relation,
  values,
});

export const upd = (
  relation: SchemaRef,
  key: ColumnValue[],
  changedColumns: number[],
  values: ColumnValue[],
): Change => ({ kind: "update", relation, key, changedColumns, values });

export const del = (relation: SchemaRef, key: ColumnValue[]): Change => ({ kind: "delete", relation, key });

/** The error a promise rejects with; a promise that resolves fails the test. */
export async function failure(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (err) {
    return err;
  }
  throw new Error("expected a failure");
}
