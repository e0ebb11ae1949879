import { randomBytes } from "node:crypto";
import type { Kafka } from "kafkajs";
import pg from "pg";
import {
  identifySource,
  resolveCaptureSlot,
  SEQUENCES_PREFIX,
  slotInfo,
} from "../../connectors/postgres-source/index.js";
import {
  liftPause,
  movePausePoint,
  pauseReached,
  readPosition,
  requestPause,
} from "../../connectors/postgres-standby/index.js";
import { formatLsn, type Lsn, parseLsn } from "../../src/change/lsn.js";
import { withPgClient } from "../../src/config/postgres-connection.js";
import { asStandbyWriter } from "../../src/config/standby-session.js";
import { closeQuietly } from "../../src/errors/close-quietly.js";
import { DiffrelayError } from "../../src/errors/diffrelay-error.js";
import { partitionOffsets } from "../../src/kafka/topic-admin.js";
import { loadMigrations, runMigrations } from "../../src/migrations/migration-runner.js";
import { withValueFormat } from "../../src/sql/value-format.js";
import { type PublishedTable, publishedTables } from "../seed/published-tables.js";
import { createExportedSnapshot, type ExportedSnapshot, importSnapshot } from "../seed/snapshot-slot.js";
import { bucketRows, type HashedTable, hashBuckets } from "./chunk-hasher.js";
import { alignment, differingBuckets, diffRows, type RowDifferences } from "./difference-finder.js";
import { TopicFollower } from "./topic-follower.js";

export interface VerifyOptions {
  sourceConfig: pg.ClientConfig;
  standbyConfig: pg.ClientConfig;
  kafka: Kafka;
  topic: string;
  publication: string;
  /** Unset: the default for the source's database. */
  captureSlot: string | undefined;
  /** Source snapshots tried before giving up (the standby may step over each one). */
  maxAttempts: number;
  /** How long one attempt waits for the standby to reach its snapshot. */
  attemptTimeoutMs: number;
  /** Rows per hash bucket (about). */
  chunkRows: number;
  /** Differing rows listed per table and kind. */
  maxReportedRows: number;
  log?: (fields: Record<string, unknown>) => void;
}

export interface TableReport extends RowDifferences {
  table: string;
  equal: boolean;
  sourceRows: number;
  standbyRows: number;
  /** A problem that prevented comparing rows (missing table or column). */
  problem: string | null;
  /** More differing rows exist than are listed. */
  truncated: boolean;
}

export interface VerifyReport {
  equal: boolean;
  consistentPoint: string;
  standbyLastCommitLsn: string;
  standbyNextOffset: string;
  attempts: number;
  tables: TableReport[];
}

/** How long verify waits for a running applier to reach its first stop point. */
const PAUSE_REACH_MS = 5000;

/** The standby cannot be compared (no position, or no matching point found). */
export class VerifyUnableError extends DiffrelayError {
  override name = "VerifyUnableError";

  constructor(message: string, options?: { cause?: unknown }) {
    super("incomplete", message, options);
  }
}

/**
 * Compares every published table of the source with the standby at one source
 * position, while the applier keeps running.
 *
 * An attempt exports a source snapshot at consistent point C (exactly the
 * transactions with commit LSN < C). The standby is then read in REPEATABLE
 * READ transactions, each showing its data together with its own position
 * (last_commit_lsn L, next_offset N) as one committed state. That state equals
 * the source snapshot iff L < C and no transaction with commit LSN in (L, C)
 * exists: the first transaction after L on the topic (from N on) has commit
 * LSN >= C, or, when the topic holds nothing after L yet, the capture's slot
 * has confirmed past C (so everything before C is on the topic) and the topic
 * shows nothing after L up to its end. Then both snapshots are hashed. If the
 * applier steps over C (it groups transactions, so it may never stop exactly
 * there), the attempt is dropped and a new snapshot is exported.
 */
export async function runVerify(given: VerifyOptions): Promise<VerifyReport> {
  // Rows are hashed as text: both sides must print every value the same way.
  const options: VerifyOptions = {
    ...given,
    sourceConfig: withValueFormat(given.sourceConfig),
    standbyConfig: asStandbyWriter(withValueFormat(given.standbyConfig)),
  };
  const log = options.log ?? (() => undefined);
  const source = new pg.Client(options.sourceConfig);
  source.on("error", () => undefined);
  await source.connect();
  const standby = new pg.Client(options.standbyConfig);
  standby.on("error", () => undefined);
  await standby.connect();
  let follower: TopicFollower | null = null;
  try {
    options.captureSlot = await resolveCaptureSlot(source, options.captureSlot, (message) =>
      log({ event: "note", message }),
    );
    const identity = await identifySource(source);
    const initial = await standbyPosition(standby, options.topic);
    if (!initial) {
      throw new VerifyUnableError(
        `the standby has no position for topic ${options.topic}: seed it (diffrelay seed) and start its applier first`,
      );
    }
    follower = new TopicFollower(options.kafka, options.topic, initial.nextOffset);
    await follower.start();
    const admin = options.kafka.admin();
    await admin.connect();
    try {
      for (let attempt = 1; attempt <= options.maxAttempts; attempt++) {
        const slotName = `diffrelay_verify_${process.pid}_${randomBytes(4).toString("hex")}`;
        const snapshot = await exportSnapshotWithPause(options, source, slotName, identity.serverVersionNum);
        try {
          const matched = await waitForMatch(snapshot, standby, source, follower, admin, options);
          log({
            event: "verify attempt",
            attempt,
            consistentPoint: formatLsn(snapshot.consistentPoint),
            outcome: matched ? "match" : "passed",
          });
          if (!matched) continue;
          try {
            await importSnapshot(source, snapshot.snapshotName);
            // The snapshot is imported: the replication connection is no longer needed.
            await snapshot.close();
            const tables = await compareAll(source, standby, options);
            return {
              equal: tables.every((t) => t.equal),
              consistentPoint: formatLsn(snapshot.consistentPoint),
              standbyLastCommitLsn: formatLsn(matched.lastCommitLsn),
              standbyNextOffset: matched.nextOffset.toString(),
              attempts: attempt,
              tables,
            };
          } finally {
            await source.query("ROLLBACK").catch(() => undefined);
            await standby.query("ROLLBACK").catch(() => undefined);
          }
        } finally {
          await snapshot.close();
          await endPause(options);
        }
      }
    } finally {
      await closeQuietly(admin.disconnect());
    }
    throw new VerifyUnableError(
      `the standby never stood exactly at a source snapshot in ${options.maxAttempts} attempts (its applier groups transactions across each snapshot's consistent point); retry with more --max-attempts or when the write load is lower`,
    );
  } finally {
    await follower?.stop();
    await closeQuietly(source.end());
    await closeQuietly(standby.end());
  }
}

interface Position {
  nextOffset: bigint;
  lastCommitLsn: Lsn;
}

/**
 * Makes a running applier stand exactly at the snapshot, whatever the write
 * load (migrations/standby/003_apply_pause.sql). It is first asked to stop at
 * the source's current position, before the snapshot exists, so that no
 * transaction after the snapshot can slip past while the request travels; once
 * it has stopped (or a moment has passed: an idle or stopped applier never
 * will), the snapshot is exported and the stop point moved to it. An empty
 * sequence-position transaction committed after the snapshot guarantees a
 * transaction to stop before even when nothing else is written. Without a
 * running applier the standby is not moving and is matched as it is.
 */
async function exportSnapshotWithPause(
  options: VerifyOptions,
  source: pg.Client,
  slotName: string,
  serverVersionNum: number,
): Promise<ExportedSnapshot> {
  const current = (await source.query<{ lsn: string }>("SELECT pg_current_wal_lsn()::text AS lsn")).rows[0]
    ?.lsn as string;
  await withStandbyClient(options, async (c) => {
    await runMigrations(c, loadMigrations("standby"));
    await requestPause(c, options.topic, parseLsn(current));
    const deadline = Date.now() + PAUSE_REACH_MS;
    while (Date.now() < deadline) {
      if (await pauseReached(c, options.topic)) break;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  });
  try {
    const snapshot = await createExportedSnapshot(options.sourceConfig, slotName, serverVersionNum);
    await source.query("SELECT pg_logical_emit_message(true, $1, '[]')", [SEQUENCES_PREFIX]);
    await withStandbyClient(options, (c) => movePausePoint(c, options.topic, snapshot.consistentPoint));
    return snapshot;
  } catch (err) {
    await endPause(options);
    throw err;
  }
}

async function endPause(options: VerifyOptions): Promise<void> {
  await withStandbyClient(options, (c) => liftPause(c, options.topic));
}

function withStandbyClient<T>(options: VerifyOptions, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  return withPgClient(options.standbyConfig, fn);
}

async function standbyPosition(client: pg.Client, topic: string): Promise<Position | null> {
  return readPosition(client, topic, 0).catch((err: { code?: string }) => {
    // No diffrelay schema: the standby was never seeded or applied to.
    if (err.code === "42P01" || err.code === "3F000") return null;
    throw err;
  });
}

/**
 * Polls the standby until one of its committed states matches the snapshot;
 * returns with that state's REPEATABLE READ transaction still open on
 * `standby`, or null when the standby went past the snapshot.
 */
async function waitForMatch(
  snapshot: ExportedSnapshot,
  standby: pg.Client,
  source: pg.Client,
  follower: TopicFollower,
  admin: ReturnType<Kafka["admin"]>,
  options: VerifyOptions,
): Promise<Position | null> {
  const deadline = Date.now() + options.attemptTimeoutMs;
  const c = snapshot.consistentPoint;
  for (;;) {
    await standby.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    const position = await standbyPosition(standby, options.topic);
    if (!position) throw new VerifyUnableError(`the standby's position for ${options.topic} disappeared`);
    follower.forget(position.nextOffset);
    let state = alignment(position.lastCommitLsn, c, follower.commitLsnsFrom(position.nextOffset));
    if (state === "unknown") {
      // Order matters: the slot's confirmation first, then the topic's end, then what was read of it.
      const slot = await slotInfo(source, options.captureSlot as string);
      const end = (await partitionOffsets(admin, options.topic)).high;
      if (slot.confirmedFlushLsn !== null && slot.confirmedFlushLsn >= c && follower.readUpTo >= end) {
        state = alignment(position.lastCommitLsn, c, follower.commitLsnsFrom(position.nextOffset));
        if (state === "unknown") state = "match";
      }
    }
    if (state === "match") return position;
    await standby.query("ROLLBACK");
    if (state === "passed") return null;
    if (Date.now() > deadline) {
      throw new VerifyUnableError(
        `the standby did not reach the source snapshot at ${formatLsn(c)} within ${options.attemptTimeoutMs} ms (it stands at ${formatLsn(position.lastCommitLsn)}, offset ${position.nextOffset}); is its applier running?`,
      );
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function compareAll(
  source: pg.Client,
  standby: pg.Client,
  options: VerifyOptions,
): Promise<TableReport[]> {
  const tables = await publishedTables(source, options.publication);
  const reports: TableReport[] = [];
  for (const table of tables) reports.push(await compareTable(source, standby, table, options));
  return reports;
}

async function compareTable(
  source: pg.Client,
  standby: pg.Client,
  table: PublishedTable,
  options: VerifyOptions,
): Promise<TableReport> {
  const name = `${table.schema}.${table.name}`;
  const report: TableReport = {
    table: name,
    equal: false,
    sourceRows: 0,
    standbyRows: 0,
    problem: null,
    truncated: false,
    changed: [],
    missing: [],
    extra: [],
  };
  const { rows } = await standby.query<{ relkind: string; attname: string | null }>(
    `SELECT c.relkind::text AS relkind, a.attname
       FROM pg_catalog.pg_class c
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
      WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`,
    [table.schema, table.name],
  );
  const standbyKind = rows[0]?.relkind;
  if (standbyKind === undefined) {
    report.problem = "the table does not exist on the standby";
    return report;
  }
  const standbyColumns = new Set(rows.map((r) => r.attname));
  const columns = table.columns.map((c) => c.name);
  const absent = columns.filter((c) => !standbyColumns.has(c));
  if (absent.length > 0) {
    report.problem = `the standby's table lacks column(s) ${absent.join(", ")}`;
    return report;
  }
  const key = table.keyColumns.map((i) => columns[i] as string);
  const sourceTable: HashedTable = { qualified: table.qualified, relkind: table.relkind, columns, key };
  const standbyTable: HashedTable = { ...sourceTable, relkind: standbyKind };
  const buckets = Math.max(1, Math.ceil(table.estimatedRows / options.chunkRows));
  const [s, t] = await Promise.all([
    hashBuckets(source, sourceTable, buckets),
    hashBuckets(standby, standbyTable, buckets),
  ]);
  const sum = (m: Map<number, { count: bigint }>) =>
    Number([...m.values()].reduce((n, h) => n + h.count, 0n));
  report.sourceRows = sum(s);
  report.standbyRows = sum(t);
  const differing = differingBuckets(s, t);
  if (differing.length === 0) {
    report.equal = true;
    return report;
  }
  // Narrowed to the differing buckets (about chunkRows rows each); a bound keeps a wholly different table cheap.
  const limit = Math.max(options.chunkRows * 20, options.maxReportedRows);
  const [sr, tr] = await Promise.all([
    bucketRows(source, sourceTable, buckets, differing, limit),
    bucketRows(standby, standbyTable, buckets, differing, limit),
  ]);
  const diff = diffRows(sr, tr, key.length > 0);
  const max = options.maxReportedRows;
  report.truncated =
    sr.length >= limit ||
    tr.length >= limit ||
    diff.changed.length > max ||
    diff.missing.length > max ||
    diff.extra.length > max;
  report.changed = diff.changed.slice(0, max);
  report.missing = diff.missing.slice(0, max);
  report.extra = diff.extra.slice(0, max);
  return report;
}

const clip = (text: string) => (text.length > 200 ? `${text.slice(0, 200)}… (${text.length} chars)` : text);

/** The human-readable report. */
export function renderReport(report: VerifyReport): string {
  const lines = [
    `compared at source snapshot ${report.consistentPoint}; standby at commit ${report.standbyLastCommitLsn}, offset ${report.standbyNextOffset} (attempt ${report.attempts})`,
  ];
  for (const t of report.tables) {
    if (t.equal) {
      lines.push(`  ${t.table}: equal (${t.sourceRows} rows)`);
      continue;
    }
    if (t.problem) {
      lines.push(`  ${t.table}: DIFFERENT: ${t.problem}`);
      continue;
    }
    lines.push(`  ${t.table}: DIFFERENT (source ${t.sourceRows} rows, standby ${t.standbyRows} rows)`);
    for (const c of t.changed)
      lines.push(`    changed ${clip(c.key)}: source ${clip(c.source)} / standby ${clip(c.standby)}`);
    for (const m of t.missing)
      lines.push(`    missing on standby${m.count > 1 ? ` (${m.count}×)` : ""} ${clip(m.row)}`);
    for (const e of t.extra)
      lines.push(`    extra on standby${e.count > 1 ? ` (${e.count}×)` : ""} ${clip(e.row)}`);
    if (t.truncated) lines.push("    … more differences not listed");
  }
  lines.push(report.equal ? "standby equals the source" : "standby DIFFERS from the source");
  return lines.join("\n");
}
