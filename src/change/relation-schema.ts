/**
 * What a consumer needs to know about a source table to apply its changes.
 * Changes refer to a schema by (relationId, version); the definition itself
 * travels once, on the schema topic (see docs/wire-format.md).
 */
export type ReplicaIdentity = "default" | "full" | "index" | "nothing";

export interface ColumnSchema {
  name: string;
  /** Source type OID; informative only, since OIDs differ between clusters. */
  typeOid: number;
  /** The source's `format_type(atttypid, atttypmod)`, schema-qualified where needed. */
  typeName: string;
  typeModifier: number;
}

export interface RelationSchema {
  /** The source's pg_class OID. Stable for the life of the table on that source. */
  relationId: number;
  schema: string;
  table: string;
  replicaIdentity: ReplicaIdentity;
  columns: ColumnSchema[];
  /**
   * Indexes into `columns` of the columns that identify a row downstream, in
   * key order: the primary key when there is one (read from pg_index, because
   * FULL identity flags every column), otherwise every column.
   */
  keyColumns: number[];
  /** True when the table has a real primary key; false when the whole row identifies it. */
  hasPrimaryKey: boolean;
}

/** A reference to one version of a relation's definition. */
export interface SchemaRef {
  relationId: number;
  /** Content hash of the definition (32 bits), so versions need no stored counter. */
  version: number;
}
