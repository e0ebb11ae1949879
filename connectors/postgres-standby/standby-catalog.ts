import type { ClientBase } from "pg";
import type { RelationSchema } from "../../src/change/relation-schema.js";
import { SchemaDriftError } from "./drift-error.js";

export interface TargetColumn {
  name: string;
  attnum: number;
  typeOid: number;
  /** The standby's `format_type(atttypid, atttypmod)`, for messages. */
  typeName: string;
  /**
   * The type without its modifier (`format_type(atttypid, -1)`: `bpchar`,
   * `"bit"`, `numeric`), schema-qualified outside pg_catalog so that it means
   * the same type under any search_path. Values are cast to this, and the
   * column's assignment coercion applies the modifier: an explicit cast to
   * `varchar(3)` would silently truncate where the source's value must fit.
   */
  castType: string;
  /** attgenerated: the standby computes it, so it is never written. */
  generated: boolean;
  /** attidentity = 'a': inserting a value needs OVERRIDING SYSTEM VALUE. */
  identityAlways: boolean;
  /**
   * The type has a default btree or hash equality throughout (a domain's base,
   * an array's element, a composite's fields). json, point, xml, box have none,
   * and `json[] = json[]` parses but fails once it meets a value.
   */
  hasEquality: boolean;
}

export interface TargetTable {
  schema: string;
  table: string;
  oid: number;
  columns: TargetColumn[];
  columnsByName: ReadonlyMap<string, TargetColumn>;
  /** Primary key column names in key order, or null when the standby table has none. */
  primaryKey: string[] | null;
}

const TABLE_SQL = `SELECT c.oid::pg_catalog.int8::pg_catalog.text AS oid,
  (SELECT pg_catalog.array_agg(a.attname::pg_catalog.text ORDER BY k.ord)
     FROM pg_catalog.unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
     JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum) AS primary_key
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_constraint con ON con.conrelid = c.oid AND con.contype = 'p'
WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`;

// format_type qualifies a type only when the current search_path hides it;
// qualifying everything outside pg_catalog makes the name independent of it.
const COLUMNS_SQL = `SELECT a.attnum::pg_catalog.int4 AS attnum, a.attname::pg_catalog.text AS name,
  a.atttypid::pg_catalog.int8::pg_catalog.text AS type_oid,
  pg_catalog.format_type(a.atttypid, a.atttypmod) AS type_name,
  CASE
    WHEN tn.nspname = 'pg_catalog' THEN pg_catalog.format_type(a.atttypid, -1)
    WHEN pg_catalog.starts_with(pg_catalog.format_type(a.atttypid, -1), pg_catalog.quote_ident(tn.nspname) || '.')
      THEN pg_catalog.format_type(a.atttypid, -1)
    ELSE pg_catalog.quote_ident(tn.nspname) || '.' || pg_catalog.format_type(a.atttypid, -1)
  END AS cast_type,
  a.attgenerated <> '' AS generated,
  a.attidentity = 'a' AS identity_always,
  eq.has_equality
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type ty ON ty.oid = a.atttypid
JOIN pg_catalog.pg_namespace tn ON tn.oid = ty.typnamespace
CROSS JOIN LATERAL (
  WITH RECURSIVE parts(type_oid) AS (
    SELECT a.atttypid
    UNION
    SELECT c.child FROM parts p JOIN pg_catalog.pg_type t ON t.oid = p.type_oid
    CROSS JOIN LATERAL (
      SELECT t.typbasetype WHERE t.typtype = 'd'
      UNION ALL SELECT t.typelem WHERE t.typsubscript = 'pg_catalog.array_subscript_handler'::pg_catalog.regproc
      UNION ALL SELECT f.atttypid FROM pg_catalog.pg_attribute f
        WHERE t.typtype = 'c' AND f.attrelid = t.typrelid AND f.attnum > 0 AND NOT f.attisdropped
    ) c(child)
  )
  SELECT pg_catalog.bool_and(
    t.typtype IN ('d', 'c', 'r', 'm')
    OR t.typsubscript = 'pg_catalog.array_subscript_handler'::pg_catalog.regproc
    OR EXISTS (
      SELECT 1 FROM pg_catalog.pg_opclass oc JOIN pg_catalog.pg_am am ON am.oid = oc.opcmethod
      WHERE am.amname IN ('btree', 'hash') AND oc.opcdefault
        AND (oc.opcintype = t.oid
          OR (t.typtype = 'e' AND oc.opcintype = 'pg_catalog.anyenum'::pg_catalog.regtype)
          OR EXISTS (SELECT 1 FROM pg_catalog.pg_cast k
                     WHERE k.castsource = t.oid AND k.casttarget = oc.opcintype
                       AND k.castmethod = 'b' AND k.castcontext = 'i')))
  ) AS has_equality
  FROM parts p JOIN pg_catalog.pg_type t ON t.oid = p.type_oid
) eq
WHERE a.attrelid = $1::pg_catalog.oid AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`;

interface TableRow {
  oid: string;
  primary_key: string[] | null;
}

interface ColumnRow {
  attnum: number;
  name: string;
  type_oid: string;
  type_name: string;
  cast_type: string;
  generated: boolean;
  identity_always: boolean;
  has_equality: boolean;
}

/** Reads one table's definition from the standby's catalog, uncached. */
export async function readTargetTable(
  client: ClientBase,
  schema: string,
  table: string,
): Promise<TargetTable> {
  const found = await client.query<TableRow>(TABLE_SQL, [schema, table]);
  const row = found.rows[0];
  if (row === undefined) {
    throw new SchemaDriftError({
      schema,
      table,
      column: null,
      problem: "the table does not exist on the standby",
    });
  }
  const columnRows = await client.query<ColumnRow>(COLUMNS_SQL, [row.oid]);
  const columns: TargetColumn[] = columnRows.rows.map((c) => ({
    name: c.name,
    attnum: c.attnum,
    typeOid: Number(c.type_oid),
    typeName: c.type_name,
    castType: c.cast_type,
    generated: c.generated,
    identityAlways: c.identity_always,
    hasEquality: c.has_equality,
  }));
  return {
    schema,
    table,
    oid: Number(row.oid),
    columns,
    columnsByName: new Map(columns.map((c) => [c.name, c])),
    primaryKey: row.primary_key,
  };
}

/**
 * Table definitions of one standby, cached per (schema, table). A definition
 * stays valid until DDL changes it, so whoever applies DDL invalidates.
 */
export class StandbyCatalog {
  private readonly tables = new Map<string, Promise<TargetTable>>();
  private readonly sequences = new Map<string, Promise<boolean>>();

  loadTargetTable(client: ClientBase, schema: string, table: string): Promise<TargetTable> {
    const cacheKey = JSON.stringify([schema, table]);
    const cached = this.tables.get(cacheKey);
    if (cached !== undefined) return cached;
    const loading = readTargetTable(client, schema, table);
    this.tables.set(cacheKey, loading);
    // A failed read is not a definition: the next caller must ask the standby again.
    loading.catch(() => {
      if (this.tables.get(cacheKey) === loading) this.tables.delete(cacheKey);
    });
    return loading;
  }

  /** Whether the standby has this sequence; cached like table definitions, until DDL. */
  hasSequence(client: ClientBase, schema: string, name: string): Promise<boolean> {
    const cacheKey = JSON.stringify([schema, name]);
    const cached = this.sequences.get(cacheKey);
    if (cached !== undefined) return cached;
    const looking = client
      .query(
        `SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
          WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind = 'S'`,
        [schema, name],
      )
      .then((result) => (result.rowCount ?? 0) > 0);
    this.sequences.set(cacheKey, looking);
    looking.catch(() => {
      if (this.sequences.get(cacheKey) === looking) this.sequences.delete(cacheKey);
    });
    return looking;
  }

  invalidateAll(): void {
    this.tables.clear();
    this.sequences.clear();
  }
}

export interface ColumnTypeDifference {
  column: string;
  source: string;
  standby: string;
}

/**
 * Columns whose type on the standby is not the source's, modifiers aside
 * (varchar(3) against varchar(5) is a value problem, not a definition one).
 * The applier names them when the standby rejects a value; doctor reports them
 * before anything is applied.
 */
export function columnTypeDifferences(source: RelationSchema, target: TargetTable): ColumnTypeDifference[] {
  const baseType = (name: string) => name.replace(/\(.*\)/, "").trim();
  return source.columns.flatMap((column) => {
    const standby = target.columnsByName.get(column.name);
    if (!standby) return [];
    const type = baseType(column.typeName);
    // The source qualifies types outside pg_catalog; the standby's typeName
    // follows its search_path, its castType does not.
    if (type === baseType(standby.typeName) || type === standby.castType) return [];
    return [{ column: column.name, source: column.typeName, standby: standby.typeName }];
  });
}
