import type pg from "pg";
import { formatLsn, type Lsn, parseLsn } from "../../src/change/lsn.js";
import type { PipelinedStatement } from "../../src/sql/pipelined-query.js";
import { quoteLiteral } from "../../src/sql/quote.js";

/**
 * Every statement on diffrelay's own standby tables (migrations/standby/):
 * the applier's position, verify's pause request, and the seed marker.
 */

export interface ApplyPosition {
  topic: string;
  partition: number;
  nextOffset: bigint;
  lastCommitLsn: Lsn;
  lastCommitTimeMicros: bigint | null;
  sourceId: bigint | null;
  epoch: number;
}

/** The standby's own record of what it has applied (migrations/standby/001_apply_position.sql). */
export async function readPosition(
  client: pg.ClientBase,
  topic: string,
  partition: number,
): Promise<ApplyPosition | null> {
  const result = await client.query<{
    next_offset: string;
    last_commit_lsn: string;
    commit_micros: string | null;
    source_id: string | null;
    epoch: number;
  }>(
    `SELECT next_offset::text, last_commit_lsn::text,
            (extract(epoch FROM last_commit_time) * 1000000)::bigint::text AS commit_micros,
            source_id, epoch
       FROM diffrelay.apply_position WHERE topic = $1 AND partition = $2`,
    [topic, partition],
  );
  const row = result.rows[0];
  if (!row) return null;
  return {
    topic,
    partition,
    nextOffset: BigInt(row.next_offset),
    lastCommitLsn: parseLsn(row.last_commit_lsn),
    lastCommitTimeMicros: row.commit_micros === null ? null : BigInt(row.commit_micros),
    sourceId: row.source_id === null ? null : BigInt(`0x${row.source_id}`),
    epoch: row.epoch,
  };
}

/** The upsert of a position, with its eight values as SQL expressions (parameters or literals). */
function positionUpsert(v: string[]): string {
  return `INSERT INTO diffrelay.apply_position
             (topic, partition, next_offset, last_commit_lsn, last_commit_time, source_id, epoch, standby_name, updated_at)
           VALUES (${v[0]}, ${v[1]}, ${v[2]}, ${v[3]}::pg_lsn, to_timestamp(${v[4]}::double precision / 1000000), ${v[5]}, ${v[6]}, ${v[7]}, now())
           ON CONFLICT (topic, partition) DO UPDATE SET
             next_offset = EXCLUDED.next_offset, last_commit_lsn = EXCLUDED.last_commit_lsn,
             last_commit_time = EXCLUDED.last_commit_time, source_id = EXCLUDED.source_id,
             epoch = EXCLUDED.epoch, standby_name = EXCLUDED.standby_name, updated_at = now()`;
}

function positionValues(standbyName: string, position: ApplyPosition): (string | null)[] {
  return [
    position.topic,
    String(position.partition),
    position.nextOffset.toString(),
    formatLsn(position.lastCommitLsn),
    position.lastCommitTimeMicros === null ? null : position.lastCommitTimeMicros.toString(),
    position.sourceId === null ? null : position.sourceId.toString(16).padStart(16, "0"),
    String(position.epoch),
    standbyName,
  ];
}

const PARAMETERS = Array.from({ length: 8 }, (_, i) => `$${i + 1}`);

const WRITE_POSITION = { name: "diffrelay_write_position", text: positionUpsert(PARAMETERS) };

/** Written inside the transaction that applied the changes it covers, never on its own. */
export async function writePosition(
  client: pg.ClientBase,
  standbyName: string,
  position: ApplyPosition,
): Promise<void> {
  await client.query({ ...WRITE_POSITION, values: positionValues(standbyName, position) });
}

/**
 * The position's upsert and the COMMIT, to end a pipeline that applied the
 * changes the position covers (TransactionApplier.applyChanges' `commit`).
 */
export function positionCommit(standbyName: string, position: ApplyPosition): PipelinedStatement[] {
  return [
    { ...WRITE_POSITION, values: positionValues(standbyName, position) },
    { text: "COMMIT", values: [] },
  ];
}

/**
 * Writes the position and commits the transaction it covers in one round trip
 * (one simple query of two statements, after `before`, commands not sent yet):
 * on the standby, every round trip of a small transaction's apply is latency.
 * An error in the upsert (or in `before`) skips the COMMIT, leaving the
 * transaction aborted, as separate queries would.
 */
export async function commitWithPosition(
  client: pg.ClientBase,
  standbyName: string,
  position: ApplyPosition,
  before: readonly string[] = [],
): Promise<void> {
  const literals = positionValues(standbyName, position).map((v) => (v === null ? "NULL" : quoteLiteral(v)));
  await client.query([...before, positionUpsert(literals), "COMMIT"].join("; "));
}

/**
 * Before a seed replaces the standby's tables: the old position must not stay
 * next to half-copied tables, and an applier must not start on them from the
 * topic's beginning (migrations/standby/002_seed_in_progress.sql).
 */
export async function markSeedStarted(client: pg.ClientBase, topic: string): Promise<void> {
  await client.query("BEGIN");
  await client.query("DELETE FROM diffrelay.apply_position WHERE topic = $1 AND partition = 0", [topic]);
  await client.query(
    "INSERT INTO diffrelay.seed_in_progress (topic) VALUES ($1) ON CONFLICT (topic) DO UPDATE SET started_at = now()",
    [topic],
  );
  await client.query("COMMIT");
}

/** The seeded position and the end of the seed, as one transaction. */
export async function markSeedFinished(
  client: pg.ClientBase,
  standbyName: string,
  position: ApplyPosition,
): Promise<void> {
  await client.query("BEGIN");
  await writePosition(client, standbyName, position);
  await client.query("DELETE FROM diffrelay.seed_in_progress WHERE topic = $1", [position.topic]);
  await client.query("COMMIT");
}

/** When a seed that has not finished started, or null when none is under way. */
export async function seedInProgress(client: pg.ClientBase, topic: string): Promise<Date | null> {
  const { rows } = await client.query<{ started_at: Date }>(
    "SELECT started_at FROM diffrelay.seed_in_progress WHERE topic = $1",
    [topic],
  );
  return rows[0]?.started_at ?? null;
}

/*
 * Verify's pause (migrations/standby/003_apply_pause.sql): verify requests a
 * stop before an LSN, the applier records where it stopped, verify may move
 * the point, and whoever ends the pause deletes the row.
 */

/** Verify: stop before the first source transaction at or after `before`. */
export async function requestPause(client: pg.ClientBase, topic: string, before: Lsn): Promise<void> {
  await client.query(
    `INSERT INTO diffrelay.apply_pause (topic, before_lsn) VALUES ($1, $2::pg_lsn)
     ON CONFLICT (topic) DO UPDATE SET before_lsn = EXCLUDED.before_lsn, paused_at_lsn = NULL, requested_at = now()`,
    [topic, formatLsn(before)],
  );
}

/** Verify: whether the applier has stopped for the request. */
export async function pauseReached(client: pg.ClientBase, topic: string): Promise<boolean> {
  const paused = await client.query(
    "SELECT 1 FROM diffrelay.apply_pause WHERE topic = $1 AND paused_at_lsn IS NOT NULL",
    [topic],
  );
  return (paused.rowCount ?? 0) > 0;
}

/** Verify: the same request with a new stop point, which the applier has not stopped for yet. */
export async function movePausePoint(client: pg.ClientBase, topic: string, before: Lsn): Promise<void> {
  await client.query(
    "UPDATE diffrelay.apply_pause SET before_lsn = $2::pg_lsn, paused_at_lsn = NULL WHERE topic = $1",
    [topic, formatLsn(before)],
  );
}

/** Verify when done, or the applier when a pause was held too long. */
export async function liftPause(client: pg.ClientBase, topic: string): Promise<void> {
  await client.query("DELETE FROM diffrelay.apply_pause WHERE topic = $1", [topic]);
}

/** Applier: the stop point of a request it has not stopped for yet, or null. */
export async function readPauseRequest(client: pg.ClientBase, topic: string): Promise<Lsn | null> {
  const { rows } = await client.query<{ lsn: string }>(
    "SELECT before_lsn::text AS lsn FROM diffrelay.apply_pause WHERE topic = $1 AND paused_at_lsn IS NULL",
    [topic],
  );
  return rows[0] ? parseLsn(rows[0].lsn) : null;
}

/** Applier, while paused: the request's stop point whether or not it stopped for it, or null once lifted. */
export async function readPausePoint(client: pg.ClientBase, topic: string): Promise<Lsn | null> {
  const { rows } = await client.query<{ lsn: string }>(
    "SELECT before_lsn::text AS lsn FROM diffrelay.apply_pause WHERE topic = $1",
    [topic],
  );
  return rows[0] ? parseLsn(rows[0].lsn) : null;
}

/** Applier: where it stopped (its last applied commit LSN), for verify to see. */
export async function markPausedAt(client: pg.ClientBase, topic: string, at: Lsn): Promise<void> {
  await client.query("UPDATE diffrelay.apply_pause SET paused_at_lsn = $2::pg_lsn WHERE topic = $1", [
    topic,
    formatLsn(at),
  ]);
}

/*
 * rejoin's record of an old primary's unpublished transactions
 * (migrations/standby/004_rejoin_report.sql).
 */

/** Commits the report on its own, before any repair; returns its id. */
export async function recordRejoinReport(
  client: pg.ClientBase,
  oldTopic: string,
  newTopic: string,
  report: unknown,
): Promise<string> {
  const { rows } = await client.query<{ id: string }>(
    "INSERT INTO diffrelay.rejoin_report (old_topic, new_topic, report) VALUES ($1, $2, $3::jsonb) RETURNING id::text",
    [oldTopic, newTopic, JSON.stringify(report)],
  );
  return rows[0]?.id as string;
}

/** Inside the repair's transaction. */
export async function markRejoinRepaired(client: pg.ClientBase, id: string): Promise<void> {
  await client.query("UPDATE diffrelay.rejoin_report SET repaired_at = now() WHERE id = $1", [id]);
}

/** The last report recorded for a rejoin onto `newTopic`, or null. */
export async function latestRejoinReport(
  client: pg.ClientBase,
  newTopic: string,
): Promise<{ id: string; report: unknown; repairedAt: Date | null } | null> {
  const { rows } = await client.query<{ id: string; report: unknown; repaired_at: Date | null }>(
    "SELECT id::text, report, repaired_at FROM diffrelay.rejoin_report WHERE new_topic = $1 ORDER BY id DESC LIMIT 1",
    [newTopic],
  );
  const row = rows[0];
  return row ? { id: row.id, report: row.report, repairedAt: row.repaired_at } : null;
}
