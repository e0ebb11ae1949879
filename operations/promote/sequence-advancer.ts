import type pg from "pg";

export interface AdvancedSequence {
  sequence: string;
  from: string;
  to: string;
}

/**
 * Brings every ascending sequence owned by a column (serial, identity) past
 * the largest value in that column. The positions the capture published can be
 * up to a heartbeat old; the rows themselves are the last word on which values
 * were used.
 */
export async function advanceOwnedSequences(client: pg.Client): Promise<AdvancedSequence[]> {
  const owned = await client.query<{ seq: string; tbl: string; col: string }>(
    `SELECT s.oid::regclass::text AS seq, t.oid::regclass::text AS tbl, quote_ident(a.attname) AS col
       FROM pg_class s
       JOIN pg_sequence q ON q.seqrelid = s.oid AND q.seqincrement > 0
       JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid
                       AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
       JOIN pg_class t ON t.oid = d.refobjid
       JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = d.refobjsubid
      WHERE s.relkind = 'S'`,
  );
  const advanced: AdvancedSequence[] = [];
  for (const { seq, tbl, col } of owned.rows) {
    const result = await client.query<{ before: string; max: string | null }>(
      `SELECT (SELECT last_value::text FROM ${seq}) AS before, (SELECT max(${col})::text FROM ${tbl}) AS max`,
    );
    const row = result.rows[0];
    if (!row || row.max === null || BigInt(row.max) <= BigInt(row.before)) continue;
    await client.query("SELECT setval($1::regclass, $2::bigint, true)", [seq, row.max]);
    advanced.push({ sequence: seq, from: row.before, to: row.max });
  }
  return advanced;
}
