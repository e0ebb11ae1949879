// Scenario 5: a standby that was down catches up on a backlog of single-row UPDATE transactions.
// Native: its subscription is disabled during the outage, then enabled. diffrelay: capture and
// applier are both stopped during the outage, so each stage is then measured alone, as it would run
// on a machine of its own: first the capture drains the slot's backlog into Kafka, then (with the
// capture idle) the applier drains the topic's backlog into the standby, which is the catch-up.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fetchMetric } from "../../scripts/demo/child-services.js";
import { pgbenchArgs, runPgbench } from "../../scripts/measure/pgbench.js";
import {
  accountsDdl,
  accountsInsert,
  type BenchContext,
  type PerSystem,
  Run,
  type SystemName,
  sleep,
  sql,
} from "../context.js";
import { CpuMeter } from "../resources.js";
import { updateScript } from "./small-transactions.js";

const TABLE = "bench_catchup";
const DEADLINE_MS = 900_000;

/** One stage draining a backlog: its rate and the CPU its processes spent on it. */
export interface StageDrain {
  changesPerSecond: number;
  /** CPU seconds per process during the drain. */
  cpuSeconds: Record<string, number>;
}

export interface CatchUpSystemResult {
  /** Standby catch-up: first to last backlog transaction committed on the standby. */
  catchUp: StageDrain;
  /** diffrelay only: the capture draining the slot's backlog into Kafka, its walsender included. */
  capture?: StageDrain;
}

export interface CatchUpShared {
  transactions: number;
}

export type CatchUpResult = PerSystem<CatchUpSystemResult, CatchUpShared>;

export async function catchUp(ctx: BenchContext, systems: SystemName[]): Promise<CatchUpResult> {
  const { sizes } = ctx;
  const run = new Run(ctx.stack, "catchup", systems);
  const profileDir = ctx.profileDir ? join(ctx.profileDir, run.db) : undefined;
  try {
    await run.open(accountsDdl(TABLE), accountsInsert(TABLE, 1, sizes.smallRows), [TABLE], {
      logDir: ctx.logDir,
      profileDir,
    });
    await run.diffrelay?.stopApply();
    await run.diffrelay?.stopCapture();
    if (run.native) await setSubscription(run, false);

    const dir = mkdtempSync(join(tmpdir(), "diffrelay-bench-"));
    const script = join(dir, "update.sql");
    writeFileSync(script, updateScript(TABLE, sizes.smallRows));
    const clients = 4;
    const perClient = Math.max(1, Math.round(sizes.catchUpTransactions / clients));
    ctx.log(`  catch-up: a backlog of ${perClient * clients} single-row UPDATEs (${systems.join(" + ")})`);
    const first = await run.insertMarker("backlog-start");
    const load = await runPgbench(pgbenchArgs(run.primary, script, clients, "44", ["-t", String(perClient)]));
    const last = await run.insertMarker("backlog-end");
    const transactions = load.transactions;
    const result: CatchUpResult = { shared: { transactions } };

    if (run.diffrelay) {
      const pipeline = run.diffrelay;
      // Both markers and every UPDATE of the backlog are one row each.
      const rows = transactions + 2;
      const captureStart = Date.now();
      await pipeline.startCapture(ctx.logDir, profileDir);
      const capture = pipeline.capture;
      if (!capture) throw new Error("the capture did not start");
      const captureMeter = new CpuMeter({
        "diffrelay capture": capture.child.pid,
        "diffrelay walsender": await waitFor(() => pipeline.walsenderPid()),
      });
      captureMeter.start();
      const captured = await drain(
        () => fetchMetric(capture, "diffrelay_capture_rows_total"),
        rows,
        captureStart,
      );
      const captureCpu = captureMeter.stop();
      await pipeline.startApply(ctx.logDir, profileDir);
      const apply = pipeline.apply;
      if (!apply) throw new Error("the applier did not start");
      const applyMeter = new CpuMeter({
        "diffrelay apply": apply.child.pid,
        "Kafka broker": ctx.stack.kafkaPid,
      });
      applyMeter.start();
      // Timed on the standby, as native's is: polling the applier's metrics 50 times a second took
      // about a tenth of its CPU, which the meter charged to the catch-up.
      result.diffrelay = {
        capture: { changesPerSecond: captured.rows / captured.seconds, cpuSeconds: captureCpu },
        catchUp: await standbyDrain(run, "diffrelay", first.id, last.id, transactions, applyMeter),
      };
    }
    if (run.native) {
      const native = run.native;
      await setSubscription(run, true);
      const meter = new CpuMeter({
        "native walsender": await waitFor(() => native.walsenderPid()),
        "native apply worker": await waitFor(() => native.applyWorkerPid()),
      });
      meter.start();
      result.native = { catchUp: await standbyDrain(run, "native", first.id, last.id, transactions, meter) };
    }
    return result;
  } finally {
    await run.close();
  }
}

/**
 * A standby's catch-up rate, from the first backlog marker's commit on the standby to the last one's
 * (native commits each transaction; diffrelay commits the first marker with the group it starts).
 */
async function standbyDrain(
  run: Run,
  system: SystemName,
  firstId: string,
  lastId: string,
  transactions: number,
  meter: CpuMeter,
): Promise<StageDrain> {
  const deadline = Date.now() + DEADLINE_MS;
  const end = await run.markerOn(system, lastId, deadline);
  const cpuSeconds = meter.stop();
  const start = await run.markerOn(system, firstId, deadline);
  return { changesPerSecond: transactions / ((end - start) / 1000), cpuSeconds };
}

/**
 * Polls a process's running count of rows until it reaches `target`. The drain is timed from the
 * first poll that saw it move (the process's start-up is not the stage's rate), or from `spawnedAt`
 * when the first answer is already the whole backlog.
 */
async function drain(
  count: () => Promise<number>,
  target: number,
  spawnedAt: number,
): Promise<{ rows: number; seconds: number }> {
  const deadline = Date.now() + DEADLINE_MS;
  let from: { at: number; seen: number } | null = null;
  for (;;) {
    // The metrics endpoint answers only once the process is up.
    const seen = await count().catch(() => 0);
    const now = Date.now();
    if (from === null && seen > 0) from = seen >= target ? { at: spawnedAt, seen: 0 } : { at: now, seen };
    if (from !== null && seen >= target) return { rows: seen - from.seen, seconds: (now - from.at) / 1000 };
    if (now > deadline) throw new Error(`only ${seen} of ${target} rows drained in time`);
    await sleep(20);
  }
}

async function waitFor(pid: () => Promise<number | undefined>): Promise<number> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const found = await pid();
    if (found !== undefined) return found;
    if (Date.now() > deadline) throw new Error("the replication process did not start");
    await sleep(20);
  }
}

/** Disables or enables native's subscription; disabled, its walsender is gone once this returns. */
async function setSubscription(run: Run, enabled: boolean): Promise<void> {
  const native = run.native;
  if (!native) return;
  await sql(run.standbyOf("native"), `ALTER SUBSCRIPTION ${native.name} ${enabled ? "ENABLE" : "DISABLE"}`);
  if (enabled) return;
  const deadline = Date.now() + 60_000;
  while ((await native.walsenderPid()) !== undefined) {
    if (Date.now() > deadline) throw new Error("native's walsender did not end after DISABLE");
    await sleep(20);
  }
}
