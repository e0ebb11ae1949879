import type pg from "pg";
import { quoteQualified } from "../../src/sql/quote.js";

/** A table the source's publication carries, as seed and verify need it. */
export interface PublishedTable {
  schema: string;
  name: string;
  /** `"schema"."name"`, quoted. */
  qualified: string;
  /** 'r' plain table, 'p' partitioned root (publish_via_partition_root). */
  relkind: string;
  columns: PublishedColumn[];
  /** Indexes into `columns` of the primary key, in key order; empty without one. */
  keyColumns: number[];
  /** Planner estimates, for progress and range splitting. */
  estimatedRows: number;
  pages: number;
}

export interface PublishedColumn {
  name: string;
  typeName: string;
  generated: boolean;
  /**
   * Whether binary COPY of this column is the same bytes on any server of the
   * same major version: a built-in type (OID below FirstNormalObjectId) with
   * send/receive functions, and for arrays a built-in element type too. Binary
   * arrays, records and enums carry type OIDs, which differ between clusters
   * for user-defined types, so those go through text.
   */
  binaryPortable: boolean;
}

export async function publishedTables(client: pg.ClientBase, publication: string): Promise<PublishedTable[]> {
  const { rows: tables } = await client.query<{
    oid: number;
    nspname: string;
    relname: string;
    relkind: string;
    reltuples: number;
    relpages: number;
  }>(
    `SELECT c.oid::int AS oid, n.nspname, c.relname, c.relkind::text AS relkind,
            greatest(c.reltuples, 0)::float8 AS reltuples, c.relpages
       FROM pg_catalog.pg_publication_tables pt
       JOIN pg_catalog.pg_namespace n ON n.nspname = pt.schemaname
       JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename
      WHERE pt.pubname = $1 AND n.nspname <> 'diffrelay'
      ORDER BY n.nspname, c.relname`,
    [publication],
  );
  const result: PublishedTable[] = [];
  for (const t of tables) {
    const { rows: columns } = await client.query<{
      attname: string;
      type_name: string;
      generated: boolean;
      binary_portable: boolean;
    }>(
      `SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type_name,
              a.attgenerated <> '' AS generated,
              (t.oid < 16384 AND t.typsend <> 0 AND t.typreceive <> 0
                AND (t.typelem = 0 OR t.typelem < 16384)) AS binary_portable
         FROM pg_catalog.pg_attribute a
         JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
        WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
        ORDER BY a.attnum`,
      [t.oid],
    );
    const { rows: key } = await client.query<{ attname: string }>(
      `SELECT a.attname
         FROM pg_catalog.pg_index i
         CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
         JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
        WHERE i.indrelid = $1 AND i.indisprimary
        ORDER BY k.n`,
      [t.oid],
    );
    const names = columns.map((c) => c.attname);
    const keyColumns = key.map((k) => names.indexOf(k.attname)).filter((i) => i >= 0);
    result.push({
      schema: t.nspname,
      name: t.relname,
      qualified: quoteQualified(t.nspname, t.relname),
      relkind: t.relkind,
      columns: columns.map((c) => ({
        name: c.attname,
        typeName: c.type_name,
        generated: c.generated,
        binaryPortable: c.binary_portable,
      })),
      keyColumns: keyColumns.length === key.length ? keyColumns : [],
      estimatedRows: Math.round(t.reltuples),
      pages: t.relpages,
    });
  }
  return result;
}
