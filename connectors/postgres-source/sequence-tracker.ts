import type pg from "pg";
import type { SequencePosition } from "../../src/change/change-model.js";
import { SEQUENCES_PREFIX } from "./logical-messages.js";

/**
 * The sequences a standby of this publication replicates: those the published
 * tables use (owned by a serial or identity column, or named in a column
 * default), and the standalone ones (no owning column) when the publication
 * covers them: FOR ALL TABLES, or FOR TABLES IN SCHEMA of their schema. A
 * sequence used only by tables outside the publication is not there: a standby
 * need not have it, and a setval there would stop its applier.
 * Only sequences that were ever called have a position (last_value not null).
 */
export async function replicatedSequences(
  client: pg.Client,
  publication: string,
): Promise<{ schema: string; name: string; lastValue: string }[]> {
  const version = Number(
    (await client.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]?.v,
  );
  // pg_publication_namespace (FOR TABLES IN SCHEMA) exists from PostgreSQL 15.
  const inPublishedSchema =
    version >= 150000
      ? `OR c.relnamespace IN (SELECT pn.pnnspid FROM pg_catalog.pg_publication_namespace pn
                                 JOIN pg_catalog.pg_publication p ON p.oid = pn.pnpubid AND p.pubname = $1)`
      : "";
  const { rows } = await client.query<{ schema: string; name: string; last_value: string }>(
    `WITH published AS (
       SELECT c.oid FROM pg_catalog.pg_publication_tables pt
         JOIN pg_catalog.pg_namespace n ON n.nspname = pt.schemaname
         JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename
        WHERE pt.pubname = $1
     ), owned AS (
       SELECT d.objid AS seq, d.refobjid AS tbl FROM pg_catalog.pg_depend d
        WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass
          AND d.deptype IN ('a', 'i')
     ), used AS (
       SELECT seq FROM owned WHERE tbl IN (SELECT oid FROM published)
       UNION
       SELECT d.refobjid FROM pg_catalog.pg_depend d
         JOIN pg_catalog.pg_attrdef ad ON d.classid = 'pg_catalog.pg_attrdef'::regclass AND d.objid = ad.oid
        WHERE d.refclassid = 'pg_catalog.pg_class'::regclass AND ad.adrelid IN (SELECT oid FROM published)
       UNION
       SELECT c.oid FROM pg_catalog.pg_class c
        WHERE c.relkind = 'S' AND c.oid NOT IN (SELECT seq FROM owned)
          AND (EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1 AND puballtables)
               ${inPublishedSchema})
     )
     SELECT s.schemaname AS schema, s.sequencename AS name, s.last_value::text
       FROM pg_catalog.pg_sequences s
       JOIN pg_catalog.pg_namespace n ON n.nspname = s.schemaname
       JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = s.sequencename
      WHERE c.oid IN (SELECT seq FROM used) AND s.last_value IS NOT NULL
        AND s.schemaname <> 'diffrelay' AND s.schemaname NOT LIKE 'pg\\_temp%'
      ORDER BY 1, 2`,
    [publication],
  );
  return rows.map((r) => ({ schema: r.schema, name: r.name, lastValue: r.last_value }));
}

/**
 * Logical decoding carries no sequence values, so the capture publishes them:
 * every heartbeat it reads the replicated sequences and writes the positions
 * that moved as one transactional logical message, which reaches the topic in
 * commit order like any transaction. pg_sequences.last_value is at or ahead of
 * every value handed out when it is read, so a standby that takes over never
 * generates a value already used before this point. (promote also advances
 * sequences past the values present in their tables.)
 */
export class SequenceTracker {
  private readonly published = new Map<string, string>();

  constructor(private readonly publication: string) {}

  async publishChanged(client: pg.Client): Promise<number> {
    const moved: SequencePosition[] = [];
    for (const row of await replicatedSequences(client, this.publication)) {
      const key = JSON.stringify([row.schema, row.name]);
      if (this.published.get(key) === row.lastValue) continue;
      moved.push({ schema: row.schema, name: row.name, lastValue: row.lastValue, isCalled: true });
    }
    if (moved.length === 0) return 0;
    await client.query("SELECT pg_catalog.pg_logical_emit_message(true, $1, $2)", [
      SEQUENCES_PREFIX,
      JSON.stringify(moved),
    ]);
    for (const s of moved) this.published.set(JSON.stringify([s.schema, s.name]), s.lastValue);
    return moved.length;
  }
}
