import type pg from "pg";
import { quoteIdent } from "../../src/sql/quote.js";
import type { BucketHash, KeyedRow } from "./difference-finder.js";

export interface HashedTable {
  qualified: string;
  /** 'p' reads all partitions; anything else reads ONLY the table (its children are published separately). */
  relkind: string;
  columns: string[];
  /** Key column names; empty: the whole row is the key. */
  key: string[];
}

/**
 * Rows are spread over `buckets` by a hash of their key text, not by key
 * ranges: bucket membership is the same on both servers whatever their
 * collations (a text key range is not), and one sequential scan hashes the
 * whole table. Each bucket's digest is its row count and the sum of the rows'
 * 64-bit hashes (md5 of the row text), which does not depend on scan order.
 */
function rowSource(t: HashedTable): string {
  const cols = t.columns.map(quoteIdent).join(", ");
  const key = t.key.length > 0 ? `ROW(${t.key.map(quoteIdent).join(", ")})::text` : `ROW(${cols})::text`;
  const from = t.relkind === "p" ? t.qualified : `ONLY ${t.qualified}`;
  return `SELECT ${key} AS k, ROW(${cols})::text AS r FROM ${from}`;
}

const BUCKET_OF = "((('x' || substr(md5(k), 1, 8))::bit(32)::int & 2147483647) % $1)";

export async function hashBuckets(
  client: pg.ClientBase,
  t: HashedTable,
  buckets: number,
): Promise<Map<number, BucketHash>> {
  const { rows } = await client.query<{ b: number; n: string; s: string }>(
    `SELECT ${BUCKET_OF} AS b, count(*)::text AS n,
            sum(('x' || substr(md5(r), 1, 16))::bit(64)::bigint::numeric)::text AS s
       FROM (${rowSource(t)}) x
      GROUP BY 1`,
    [buckets],
  );
  return new Map(rows.map((r) => [r.b, { count: BigInt(r.n), sum: r.s }]));
}

/** The rows of some buckets, for narrowing a difference down to rows. */
export async function bucketRows(
  client: pg.ClientBase,
  t: HashedTable,
  buckets: number,
  which: number[],
  limit: number,
): Promise<KeyedRow[]> {
  const { rows } = await client.query<{ k: string; r: string }>(
    `SELECT k, r FROM (${rowSource(t)}) x WHERE ${BUCKET_OF} = ANY($2::int[]) LIMIT $3`,
    [buckets, which, limit],
  );
  return rows.map((r) => ({ key: r.k, row: r.r }));
}
