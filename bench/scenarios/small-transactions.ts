// Scenario 1: single-row UPDATE transactions from 4 pgbench clients on a 100k-row, 10-column table.
// End-to-end rate and tail lag of a burst, then commit→commit latency at a fixed offered rate.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fetchMetric, type RunningService } from "../../scripts/demo/child-services.js";
import { pgbenchArgs, runPgbench } from "../../scripts/measure/pgbench.js";
import { BytesMeter, type PhaseBytes } from "../bytes-meter.js";
import {
  accountsDdl,
  accountsInsert,
  type BenchContext,
  dbNowMs,
  type PerSystem,
  Run,
  type SystemName,
  sql,
  textBytesPerRow,
} from "../context.js";
import {
  installApplyProbe,
  type LatencySummary,
  latencies,
  rowAppliedTimes,
  rowCommitTimes,
} from "../latency-probe.js";
import { CpuMeter } from "../resources.js";

const TABLE = "bench_accounts";
/** Takes one bulk INSERT during the second latency measurement. */
const SIDE_TABLE = "bench_side";

export interface SmallSystemResult {
  transactions: number;
  /** Transactions per second from the first commit on the primary to the marker's commit on the standby. */
  endToEndTps: number;
  /** Marker commit on the primary (right after pgbench ends) → its commit on the standby. */
  tailLagMs: number;
  latency: LatencySummary;
  /** The same, while one bulk INSERT of latencyBulkRows rows commits on another table. */
  latencyUnderBulk: LatencySummary;
  /** CPU seconds used during the burst by each of this system's processes. */
  cpuSeconds: Record<string, number>;
  /** diffrelay: what the capture had acknowledged during the burst, from its counters. */
  published?: PublishedCounts;
}

export interface SmallShared {
  primaryTps: number;
  transactions: number;
  bytes: PhaseBytes;
  /** Key + new value as text, per update. */
  floorBytes: number;
  offeredRate: number;
  latencyTransactions: number;
}

export type SmallResult = PerSystem<SmallSystemResult, SmallShared>;

/** Data messages (one per produce request, mostly) and their bytes before Kafka's compression. */
export interface PublishedCounts {
  messages: number;
  bytes: number;
}

async function publishedCounts(capture: RunningService): Promise<PublishedCounts> {
  return {
    messages: await fetchMetric(capture, "diffrelay_capture_published_messages_total"),
    bytes: await fetchMetric(capture, "diffrelay_capture_published_bytes_total"),
  };
}

/** pgbench script: one statement, autocommitted: one single-row transaction changing one column. */
export function updateScript(table: string, rows: number): string {
  return `\\set id random(1, ${rows})
\\set delta random(-500, 500)
UPDATE ${table} SET balance = balance + :delta * 0.01 WHERE id = :id;
`;
}

export async function smallTransactions(ctx: BenchContext, systems: SystemName[]): Promise<SmallResult> {
  const { sizes } = ctx;
  const run = new Run(ctx.stack, "small", systems);
  try {
    const ddl = `${accountsDdl(TABLE)}\n${accountsDdl(SIDE_TABLE)}`;
    await run.open(ddl, accountsInsert(TABLE, 1, sizes.smallRows), [TABLE, SIDE_TABLE], {
      logDir: ctx.logDir,
      profileDir: ctx.profileDir ? join(ctx.profileDir, run.db) : undefined,
    });
    const dir = mkdtempSync(join(tmpdir(), "diffrelay-bench-"));
    const script = join(dir, "update.sql");
    writeFileSync(script, updateScript(TABLE, sizes.smallRows));

    const cpu = new CpuMeter({
      "diffrelay capture": run.diffrelay?.capture?.child.pid,
      "diffrelay apply": run.diffrelay?.apply?.child.pid,
      "diffrelay walsender": await run.diffrelay?.walsenderPid(),
      "Kafka broker": run.diffrelay ? ctx.stack.kafkaPid : undefined,
      "native walsender": await run.native?.walsenderPid(),
      "native apply worker": await run.native?.applyWorkerPid(),
    });
    const bytes = new BytesMeter(run, TABLE);
    await bytes.start();
    const capture = run.diffrelay?.capture;
    const publishedBefore = capture ? await publishedCounts(capture) : null;
    cpu.start();
    const burstStart = await dbNowMs(run.primary);
    const clients = 4;
    const perClient = Math.max(1, Math.round(sizes.smallTransactions / clients));
    ctx.log(
      `  small: ${perClient * clients} single-row UPDATEs from ${clients} clients (${systems.join(" + ")})`,
    );
    const burst = await runPgbench(
      pgbenchArgs(run.primary, script, clients, "42", ["-t", String(perClient)]),
    );
    const done = await run.marker("small-burst");
    const used = cpu.stop();
    const phaseBytes = await bytes.stop();
    const publishedAfter = capture ? await publishedCounts(capture) : null;
    const published =
      publishedBefore && publishedAfter
        ? {
            messages: publishedAfter.messages - publishedBefore.messages,
            bytes: publishedAfter.bytes - publishedBefore.bytes,
          }
        : undefined;
    const first = await sql<{ ms: number | null }>(
      run.primary,
      `SELECT (extract(epoch from min(pg_xact_commit_timestamp(xmin))) * 1000)::float8 AS ms
         FROM ${TABLE} WHERE pg_xact_commit_timestamp(xmin) >= to_timestamp($1::float8 / 1000)`,
      [burstStart],
    );
    const firstCommitMs = Number(first[0]?.ms ?? burstStart);

    ctx.log(`  small: latency at ${sizes.latencyRate} txn/s offered for ${sizes.latencySeconds} s`);
    // The probe goes on only now: its extra insert per row would slow the burst's standbys.
    for (const system of systems) await installApplyProbe(run.standbyOf(system), TABLE, "UPDATE");
    const paced = (seed: string) =>
      runPgbench(
        pgbenchArgs(run.primary, script, clients, seed, [
          "-R",
          String(sizes.latencyRate),
          "-T",
          String(sizes.latencySeconds),
        ]),
      );
    const latencyStart = await dbNowMs(run.primary);
    const quiet = await paced("43");
    await run.marker("small-latency");
    const sourceTimes = await rowCommitTimes(run.primary, TABLE, latencyStart);

    ctx.log(`  small: the same latency run while one INSERT of ${sizes.latencyBulkRows} rows commits`);
    const bulkStart = await dbNowMs(run.primary);
    await Promise.all([paced("45"), sql(run.primary, accountsInsert(SIDE_TABLE, 1, sizes.latencyBulkRows))]);
    await run.marker("small-latency-bulk", 900_000);
    const bulkSourceTimes = await rowCommitTimes(run.primary, TABLE, bulkStart);

    const result: SmallResult = {
      shared: {
        primaryTps: burst.tps,
        transactions: burst.transactions,
        bytes: phaseBytes,
        floorBytes: await textBytesPerRow(run.primary, TABLE, ["id", "balance"]),
        offeredRate: sizes.latencyRate,
        latencyTransactions: quiet.transactions,
      },
    };
    for (const system of systems) {
      const standbyCommit = done.standbyCommitMs[system] as number;
      const prefix = system === "diffrelay" ? "diffrelay " : "native ";
      result[system] = {
        transactions: burst.transactions,
        endToEndTps: burst.transactions / ((standbyCommit - firstCommitMs) / 1000),
        tailLagMs: standbyCommit - done.primaryCommitMs,
        latency: latencies(
          sourceTimes,
          await rowAppliedTimes(run.standbyOf(system), TABLE, latencyStart, bulkStart),
        ),
        latencyUnderBulk: latencies(
          bulkSourceTimes,
          await rowAppliedTimes(run.standbyOf(system), TABLE, bulkStart),
        ),
        cpuSeconds: Object.fromEntries(
          Object.entries(used).filter(
            ([name]) => name.startsWith(prefix) || (system === "diffrelay" && name === "Kafka broker"),
          ),
        ),
        published: system === "diffrelay" ? published : undefined,
      };
    }
    return result;
  } finally {
    await run.close();
  }
}
