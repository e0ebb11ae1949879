import { appendFileSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { type PgFlavor, startPostgres, startStack, stopPostgres } from "../scripts/stack/index.js";
import type { PgClusterState } from "../scripts/stack/stack-state.js";
import { sleep, sql, withDb } from "./db.js";
import { DiffrelayPipeline } from "./diffrelay-pipeline.js";
import { installApplyProbe, PROBE_DDL } from "./latency-probe.js";
import { NativeSubscription } from "./native-subscription.js";

export { sleep, sql, withDb };

/**
 * The bench runs its own private stack rather than the shared one in .stack: it needs
 * track_commit_timestamp=on (a restart) on every cluster to time source commit → standby commit
 * exactly, and restarting the shared clusters would break the tests others run on them.
 */
const BENCH_STACK_DIR = process.env.DIFFRELAY_BENCH_STACK_DIR ?? join(tmpdir(), "diffrelay-bench-stack");

/**
 * The bench stack's folder: another PostgreSQL gets a stack of its own (a stack keeps the
 * PostgreSQL its clusters were made with), so `--pg=17` never touches the default one.
 */
export function benchStackDir(pg: PgFlavor | undefined): string {
  return pg === undefined ? BENCH_STACK_DIR : `${BENCH_STACK_DIR}-pg${pg}`;
}

export type SystemName = "diffrelay" | "native";

export interface BenchStack {
  baseDir: string;
  primaryServer: string;
  /** The primary's cluster, for copying a physical standby of it. */
  primaryCluster: PgClusterState;
  standby1Server: string;
  standby2Server: string;
  brokers: string;
  kafkaDataDir: string;
  kafkaPid: number | undefined;
  /** The primary's server_version, as the results and the table name it. */
  postgresVersion: string;
  /** True when this invocation started the stack (then it stops it at the end unless asked not to). */
  startedHere: boolean;
}

/** Starts (or reuses) the bench stack and makes sure every cluster records commit timestamps. */
export async function openBenchStack(
  log: (m: string) => void,
  pg: PgFlavor | undefined,
): Promise<BenchStack> {
  const baseDir = benchStackDir(pg);
  const result = await startStack({ baseDir, pg, log });
  const names = ["primary", "standby1", "standby2"];
  for (const name of names) {
    const cluster = result.state.pg[name];
    if (!cluster) throw new Error(`bench stack has no cluster ${name}`);
    const url =
      name === "primary"
        ? result.env.DIFFRELAY_SOURCE_URL
        : result.env[`DIFFRELAY_${name.toUpperCase()}_URL`];
    // The dev stack commits with synchronous_commit = off, so WAL reaches a walsender only when the WAL
    // writer flushes it (every 200 ms): latency would measure that timer. The bench uses PostgreSQL's
    // default, as production does (fsync stays off, so a commit's flush is cheap).
    await sql(url as string, "ALTER SYSTEM SET synchronous_commit = on");
    await sql(url as string, "SELECT pg_reload_conf()");
    const rows = await sql<{ on: string }>(
      url as string,
      "SELECT current_setting('track_commit_timestamp') AS on",
    );
    if (rows[0]?.on === "on") continue;
    // A one-time change per stack: later settings in postgresql.conf override earlier ones.
    const conf = join(cluster.dataDir, "postgresql.conf");
    if (!readFileSync(conf, "utf8").includes("track_commit_timestamp = on")) {
      appendFileSync(conf, "\n# diffrelay bench: exact commit→commit latency\ntrack_commit_timestamp = on\n");
    }
    log(`restarting bench ${name} with track_commit_timestamp = on`);
    await stopPostgres(name, "fast", { baseDir });
    await startPostgres(name, { baseDir });
  }
  const env = result.env;
  const [version] = await sql<{ v: string }>(
    env.DIFFRELAY_SOURCE_URL as string,
    "SELECT current_setting('server_version') AS v",
  );
  return {
    baseDir,
    primaryServer: env.DIFFRELAY_SOURCE_URL as string,
    primaryCluster: result.state.pg.primary as PgClusterState,
    standby1Server: env.DIFFRELAY_STANDBY1_URL as string,
    standby2Server: env.DIFFRELAY_STANDBY2_URL as string,
    brokers: env.DIFFRELAY_KAFKA_BROKERS as string,
    kafkaDataDir: join(baseDir, "kafka", "data"),
    kafkaPid: result.state.kafka?.pid,
    postgresVersion: version?.v ?? "unknown",
    startedHere: !result.wasRunning,
  };
}

/** The primary's clock, in epoch milliseconds: every timestamp the bench compares comes from this host. */
export async function dbNowMs(url: string): Promise<number> {
  const rows = await sql<{ ms: number }>(
    url,
    "SELECT (extract(epoch from clock_timestamp()) * 1000)::float8 AS ms",
  );
  return Number(rows[0]?.ms);
}

export interface MarkerTimes {
  /** Commit time of the marker on the primary (epoch ms). */
  primaryCommitMs: number;
  /** Commit time of the marker on each attached standby (epoch ms), from the apply probe. */
  standbyCommitMs: Partial<Record<SystemName, number>>;
}

let markerSeq = 0;

/**
 * A run: fresh databases named after it on all three clusters, the same tables and rows on each,
 * then the systems under test attached. Dropped (subscriptions, slots, topics, databases) on close.
 */
export class Run {
  readonly db: string;
  readonly primary: string;
  readonly standby1: string;
  readonly standby2: string;
  diffrelay?: DiffrelayPipeline;
  native?: NativeSubscription;

  constructor(
    readonly stack: BenchStack,
    readonly label: string,
    readonly systems: SystemName[],
    /** streaming: native's subscription streams large transactions in progress (`streaming = on`). */
    readonly options: { streaming?: boolean } = {},
  ) {
    this.db = `bench_${label}_${Date.now().toString(36)}`;
    this.primary = withDb(stack.primaryServer, this.db);
    this.standby1 = withDb(stack.standby1Server, this.db);
    this.standby2 = withDb(stack.standby2Server, this.db);
  }

  /** The standby each system writes to: diffrelay → standby1, native → standby2. */
  standbyOf(system: SystemName): string {
    return system === "diffrelay" ? this.standby1 : this.standby2;
  }

  /**
   * Creates the databases, runs `ddl` (which must create table bench_marker among others) and
   * `seed` on all three so the standbys start as exact copies, then attaches the systems.
   */
  async open(
    ddl: string,
    seed: string,
    tables: string[],
    opts: { profileDir?: string; logDir: string },
  ): Promise<void> {
    for (const server of [this.stack.primaryServer, this.stack.standby1Server, this.stack.standby2Server]) {
      await sql(server, `CREATE DATABASE ${this.db}`);
      const url = withDb(server, this.db);
      await sql(url, `${MARKER_DDL}\n${ddl}`);
      if (seed) await sql(url, seed);
      if (server !== this.stack.primaryServer) {
        await sql(url, PROBE_DDL);
        await installApplyProbe(url, "bench_marker", "INSERT");
      }
    }
    // Native first: its publication lists the tables explicitly, so the capture's setup (REPLICA
    // IDENTITY FULL on every published table) is the only identity change in a simultaneous run.
    if (this.systems.includes("native")) {
      this.native = new NativeSubscription(this.primary, this.standby2, `native_${this.db}`);
      await this.native.create(["bench_marker", ...tables], this.options.streaming ?? false);
    }
    if (this.systems.includes("diffrelay")) {
      this.diffrelay = new DiffrelayPipeline(this.stack, this.db, this.primary, this.standby1);
      await this.diffrelay.start(opts.logDir, opts.profileDir);
    }
    // A first marker proves every attached pipeline streams end to end before anything is timed.
    await this.marker("ready", 180_000);
  }

  /**
   * Inserts a marker row on the primary and waits until every attached standby has it. Everything
   * committed before it is then on the standby. Times come from commit timestamps, not polling.
   */
  async marker(what: string, timeoutMs = 300_000): Promise<MarkerTimes> {
    const { id, primaryCommitMs } = await this.insertMarker(what);
    const standbyCommitMs: Partial<Record<SystemName, number>> = {};
    const deadline = Date.now() + timeoutMs;
    for (const system of this.systems) standbyCommitMs[system] = await this.markerOn(system, id, deadline);
    return { primaryCommitMs, standbyCommitMs };
  }

  /** Inserts a marker row on the primary, in a transaction of its own, without waiting for any standby. */
  async insertMarker(what: string): Promise<{ id: string; label: string; primaryCommitMs: number }> {
    const label = `${what}-${++markerSeq}`;
    const inserted = await sql<{ id: string }>(
      this.primary,
      "INSERT INTO bench_marker (label) VALUES ($1) RETURNING id::text",
      [label],
    );
    const id = inserted[0]?.id as string;
    return { id, label, primaryCommitMs: await markerCommitMs(this.primary, id) };
  }

  /** Waits until a system's standby has marker `id`; its commit time there (epoch ms), from the probe. */
  async markerOn(system: SystemName, id: string, deadline: number): Promise<number> {
    const client = new pg.Client(this.standbyOf(system));
    await client.connect();
    try {
      for (;;) {
        const rows = await client.query<{ ms: number }>(
          `SELECT (extract(epoch from at) * 1000)::float8 AS ms
             FROM bench_applied WHERE tbl = 'bench_marker' AND id = $1`,
          [id],
        );
        if (rows.rows[0]) return Number(rows.rows[0].ms);
        if (Date.now() > deadline) {
          throw new Error(`${system} did not deliver marker ${id} in time (run ${this.db})`);
        }
        await sleep(20);
      }
    } finally {
      await client.end();
    }
  }

  async close(): Promise<void> {
    await this.diffrelay?.stop();
    await this.native?.drop();
    for (const server of [this.stack.primaryServer, this.stack.standby1Server, this.stack.standby2Server]) {
      await sql(
        server,
        `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = $1 AND NOT active`,
        [this.db],
      );
      await sql(server, `DROP DATABASE IF EXISTS ${this.db} WITH (FORCE)`);
    }
    await this.diffrelay?.deleteTopics();
  }
}

const MARKER_DDL = "CREATE TABLE bench_marker (id bigserial PRIMARY KEY, label text NOT NULL);";

async function markerCommitMs(url: string, id: string): Promise<number> {
  const rows = await sql<{ ms: number }>(
    url,
    "SELECT (extract(epoch from pg_xact_commit_timestamp(xmin)) * 1000)::float8 AS ms FROM bench_marker WHERE id = $1",
    [id],
  );
  return Number(rows[0]?.ms);
}

/** The 10-column row of the scenarios (about 247 bytes, like the anchors in facts.md). */
export function accountsDdl(table: string): string {
  return `CREATE TABLE ${table} (
  id bigint PRIMARY KEY, owner text NOT NULL, balance numeric(14,2) NOT NULL, currency char(3) NOT NULL,
  opened timestamptz NOT NULL, tags text[], profile jsonb, note text, active boolean NOT NULL, version integer NOT NULL
);`;
}

/** Rows `from..to` of the 10-column table: deterministic, so every cluster gets the same ones. */
export function accountsInsert(table: string, from: number, to: number): string {
  return `INSERT INTO ${table}
SELECT g, 'owner ' || g, (g % 1000) * 1.25, 'EUR', '2026-01-01'::timestamptz + g * interval '1 second',
       ARRAY['tag' || (g % 7), 'vip'], jsonb_build_object('tier', g % 3, 'since', 2020 + g % 6),
       repeat('n', 40), true, 1
  FROM generate_series(${from}, ${to}) g;`;
}

export const ACCOUNT_COLUMNS = [
  "id",
  "owner",
  "balance",
  "currency",
  "opened",
  "tags",
  "profile",
  "note",
  "active",
  "version",
];

/** Average bytes of the given columns' text forms over a table: the information floor of a change. */
export async function textBytesPerRow(url: string, table: string, columns: string[]): Promise<number> {
  const expr = columns.map((c) => `coalesce(octet_length(${c}::text), 0)`).join(" + ");
  const rows = await sql<{ b: number }>(url, `SELECT avg(${expr})::float8 AS b FROM ${table}`);
  return Number(rows[0]?.b ?? 0);
}

export interface Sizes {
  /** Scenario 1: rows in the table, UPDATE transactions in the burst, offered rate and duration of the latency run. */
  smallRows: number;
  smallTransactions: number;
  latencyRate: number;
  latencySeconds: number;
  /** Scenario 2: rows of the single-transaction INSERT, UPDATE and DELETE. */
  bulkRows: number;
  /** Scenario 3: single-row UPDATEs on the scratch table, per replica identity. */
  identityUpdates: number;
  /** Scenario 4: rows of the single-transaction INSERT whose peak memory is measured. */
  largeRows: number;
  /** Scenario 5: single-row transactions in the backlog a standby catches up on. */
  catchUpTransactions: number;
  /** Scenario 1: rows of the one bulk INSERT that runs during the second latency measurement. */
  latencyBulkRows: number;
}

export interface BenchContext {
  stack: BenchStack;
  sizes: Sizes;
  logDir: string;
  /** `--cpu-prof` for the diffrelay processes of each run, into this directory; unset when not profiling. */
  profileDir?: string;
  log: (m: string) => void;
}

/** One run's result per system, plus what the run measured once for both. */
export interface PerSystem<T, S> {
  diffrelay?: T;
  native?: T;
  shared?: S;
}

/**
 * Sequential mode runs a scenario once per system and merges: each system's figures from its own
 * run, the shared ones (pgoutput, WAL) from native's run, where the table keeps PostgreSQL's default
 * identity, as a native deployment would have it.
 */
export function merge<T, S>(results: PerSystem<T, S>[]): PerSystem<T, S> {
  const out: PerSystem<T, S> = {};
  for (const r of results) {
    if (r.diffrelay) out.diffrelay = r.diffrelay;
    if (r.native) {
      out.native = r.native;
      out.shared = r.shared;
    }
    if (!out.shared) out.shared = r.shared;
  }
  return out;
}
