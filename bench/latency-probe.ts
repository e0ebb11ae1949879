// Source commit → standby commit latency per row. All clusters run on this host, so every time comes
// from one clock. On the primary, the commit timestamp (track_commit_timestamp=on). On a standby the
// commit timestamp cannot be used: PostgreSQL's apply worker records the *origin's* commit time for
// the transactions it replays (it would show zero latency). So each standby gets a deferred
// constraint trigger, ENABLE ALWAYS (it fires under session_replication_role = replica too), that
// notes clock_timestamp() per row when the standby transaction commits (deferred triggers run in
// its pre-commit step): the same probe for diffrelay's applier and native's apply worker.
import { sql } from "./db.js";

export const PROBE_DDL = `
CREATE TABLE bench_applied (tbl text NOT NULL, id bigint NOT NULL, at timestamptz NOT NULL);
CREATE FUNCTION bench_note_applied() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- Qualified: PostgreSQL's apply worker runs with an empty search_path.
  INSERT INTO public.bench_applied VALUES (TG_TABLE_NAME, NEW.id, clock_timestamp());
  RETURN NULL;
END $$;
`;

/** Starts noting commit times of inserted/updated rows of `table` on a standby (created by PROBE_DDL). */
export async function installApplyProbe(
  url: string,
  table: string,
  events = "INSERT OR UPDATE",
): Promise<void> {
  await sql(
    url,
    `CREATE CONSTRAINT TRIGGER bench_applied_${table} AFTER ${events} ON ${table}
       DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION bench_note_applied();
     ALTER TABLE ${table} ENABLE ALWAYS TRIGGER bench_applied_${table};`,
  );
}

/** When each row of `table` was last committed on a standby (epoch ms) in [sinceMs, untilMs), from the probe. */
export async function rowAppliedTimes(
  url: string,
  table: string,
  sinceMs: number,
  untilMs = Number.POSITIVE_INFINITY,
): Promise<Map<string, number>> {
  const rows = await sql<{ id: string; ms: number }>(
    url,
    `SELECT id::text AS id, (extract(epoch from max(at)) * 1000)::float8 AS ms
       FROM bench_applied
      WHERE tbl = $1 AND at >= to_timestamp($2::float8 / 1000) AND at < to_timestamp($3::float8 / 1000)
      GROUP BY id`,
    [table, sinceMs, untilMs],
  );
  return new Map(rows.map((r) => [r.id, Number(r.ms)]));
}

/** Commit time (epoch ms) of each row's current version, for rows committed at or after `sinceMs`. */
export async function rowCommitTimes(
  url: string,
  table: string,
  sinceMs: number,
): Promise<Map<string, number>> {
  const rows = await sql<{ id: string; ms: number }>(
    url,
    `SELECT id::text AS id, (extract(epoch from pg_xact_commit_timestamp(xmin)) * 1000)::float8 AS ms
       FROM ${table}
      WHERE pg_xact_commit_timestamp(xmin) >= to_timestamp($1::float8 / 1000)`,
    [sinceMs],
  );
  return new Map(rows.map((r) => [r.id, Number(r.ms)]));
}

export interface LatencySummary {
  samples: number;
  p50Ms: number;
  p95Ms: number;
  p99Ms: number;
  maxMs: number;
}

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return Number.NaN;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index] as number;
}

/**
 * Pairs each row's last version on the source with the same row on the standby. A row updated more
 * than once in the window is counted once, for its last update: the standby's current version of it
 * is the one that carried that update.
 */
export function latencies(source: Map<string, number>, standby: Map<string, number>): LatencySummary {
  const values: number[] = [];
  for (const [id, committed] of source) {
    const applied = standby.get(id);
    if (applied !== undefined) values.push(applied - committed);
  }
  return latencySummary(values);
}

/** Percentiles of latencies in ms (sorts `values` in place). */
export function latencySummary(values: number[]): LatencySummary {
  values.sort((a, b) => a - b);
  return {
    samples: values.length,
    p50Ms: percentile(values, 50),
    p95Ms: percentile(values, 95),
    p99Ms: percentile(values, 99),
    maxMs: values.length ? (values[values.length - 1] as number) : Number.NaN,
  };
}
