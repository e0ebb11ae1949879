// `npm run bench`: diffrelay against PostgreSQL's own logical replication, same machine, same
// workload, one invocation. Writes bench/results/<timestamp>.json and prints a markdown table.
//
// Flags: --tiny (every scenario once at tiny size, for the harness test), --simultaneous (both
// systems attached to one database and one load; default is one after the other), --profile
// (CPU and allocation profiles of diffrelay's processes, top functions and allocation sites printed), --keep-stack (leave the bench
// stack running when this invocation started it), --cold (no warm-up of the broker before the
// measured scenarios), --only=small,bulk,identity,large,catchup,largevis,commit, --pg=<14..18> (a
// bench stack of that PostgreSQL major, in a folder of its own; default: Debian's, 15),
// --report=<results.json> (no run: the table of an earlier run's raw results, under today's targets),
// --repeat=<n> (the measured scenarios n times, every other time native first; the table gives each
// figure's median, the ratio's range in brackets, and a target as met only when every repetition met it).
// Targets are issue 25's.
// Sizes: BENCH_SMALL_ROWS, BENCH_SMALL_TXNS, BENCH_LATENCY_RATE, BENCH_LATENCY_SECONDS,
// BENCH_LATENCY_BULK_ROWS, BENCH_BULK_ROWS, BENCH_IDENTITY_UPDATES, BENCH_LARGE_ROWS,
// BENCH_CATCHUP_TXNS.
//
// Why one after the other by default: on 2 cores, two pipelines running at once take CPU from each
// other, which distorts rates, latency and CPU per change; and the capture sets REPLICA IDENTITY FULL
// on the tables it publishes, so in a shared database native replication would be measured with an
// identity no native deployment uses (twice its pgoutput bytes). Each system therefore gets fresh
// databases seeded with the same rows and the same pgbench load (fixed random seeds).
// --simultaneous is there for the fairest byte comparison on literally the same WAL.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { join } from "node:path";
import { pgFlavor, stopStack } from "../scripts/stack/index.js";
import { type BenchContext, benchStackDir, openBenchStack, type Sizes, type SystemName } from "./context.js";
import { type Allocations, profilesByPid, topAllocations, topSelfTime } from "./profile-summary.js";
import { combineRepeats, type Figure, figure, markdownTable } from "./report.js";
import { BULK_STEPS, type BulkResult, bulk } from "./scenarios/bulk.js";
import { type CatchUpResult, catchUp } from "./scenarios/catch-up.js";
import { type CommitLatencyResult, commitLatency } from "./scenarios/commit-latency.js";
import { type IdentityPass, type IdentityWalResult, identityWal } from "./scenarios/identity-wal.js";
import { type LargeVisibleResult, largeCommitVisible } from "./scenarios/large-commit-visible.js";
import { type LargeResult, largeTransaction } from "./scenarios/large-transaction.js";
import { type SmallResult, smallTransactions } from "./scenarios/small-transactions.js";

const valued = (a: string) =>
  ["--only=", "--pg=", "--report=", "--repeat="].some((flag) => a.startsWith(flag));
const args = new Set(process.argv.slice(2).filter((a) => !valued(a)));
const flagValue = (flag: string) =>
  process.argv.find((a) => a.startsWith(`${flag}=`))?.slice(flag.length + 1);
const only = flagValue("--only")?.split(",");
const pgOption = flagValue("--pg");
const pg = pgOption === undefined ? undefined : pgFlavor(pgOption);
const reportOf = flagValue("--report");
const tiny = args.has("--tiny");
let simultaneous = args.has("--simultaneous");
const warmingUp = !tiny && !args.has("--cold");
const wants = (s: string) => !only || only.includes(s);
const repeat = repetitions(flagValue("--repeat"));

function repetitions(option: string | undefined): number {
  if (option === undefined) return 1;
  const n = Number(option);
  if (!Number.isInteger(n) || n < 1 || n > 20) {
    throw new Error(`--repeat=${option}: give a whole number of repetitions from 1 to 20`);
  }
  return n;
}

function size(name: string, normal: number, small: number): number {
  const v = process.env[name];
  if (v !== undefined) {
    const n = Number(v);
    if (!Number.isFinite(n) || n <= 0) throw new Error(`${name} must be a positive number, got "${v}"`);
    return n;
  }
  return tiny ? small : normal;
}

const sizes: Sizes = {
  smallRows: size("BENCH_SMALL_ROWS", 100_000, 2_000),
  smallTransactions: size("BENCH_SMALL_TXNS", 50_000, 800),
  latencyRate: size("BENCH_LATENCY_RATE", 1000, 200),
  latencySeconds: size("BENCH_LATENCY_SECONDS", 20, 2),
  bulkRows: size("BENCH_BULK_ROWS", 200_000, 2_000),
  identityUpdates: size("BENCH_IDENTITY_UPDATES", 20_000, 400),
  largeRows: size("BENCH_LARGE_ROWS", 1_000_000, 5_000),
  catchUpTransactions: size("BENCH_CATCHUP_TXNS", 100_000, 1_000),
  latencyBulkRows: size("BENCH_LATENCY_BULK_ROWS", 100_000, 1_000),
};

const log = (m: string) => console.error(m);

/**
 * Runs a scenario for both systems, per the mode; returns [diffrelay's run, native's run].
 * nativeFirst swaps the order of a sequential run: with --repeat, every other repetition runs
 * native first, since on this machine the run that comes first has often been the faster one.
 */
async function both<T>(run: (systems: SystemName[]) => Promise<T>, nativeFirst = false): Promise<[T, T]> {
  if (simultaneous) {
    const r = await run(["diffrelay", "native"]);
    return [r, r];
  }
  const order: SystemName[] = nativeFirst ? ["native", "diffrelay"] : ["diffrelay", "native"];
  const runs = {} as Record<SystemName, T>;
  for (const system of order) runs[system] = await run([system]);
  return [runs.diffrelay, runs.native];
}

/**
 * diffrelay's scenario 1, shortened and not measured, before anything is: a freshly started
 * broker's JVM takes minutes of traffic to compile its request paths, and a production broker is
 * long past that. Measured: the broker's CPU per 1k changes in the small-transaction burst was
 * 0.040 s on a fresh broker and 0.0062 s on one that had carried a few minutes of bench traffic,
 * and at 1000 txn/s it fell from 0.72 to 0.26 CPUs over four one-minute runs (see "Warm-up" in
 * the README). Native replication has no JVM and gets no warm-up; --cold skips it.
 */
async function warmUp(ctx: BenchContext): Promise<void> {
  ctx.log("bench: warm-up, diffrelay only, not measured: a shorter scenario 1 through the fresh broker");
  const sizes: Sizes = { ...ctx.sizes, latencySeconds: 30, latencyBulkRows: 10_000 };
  await smallTransactions({ ...ctx, sizes, profileDir: undefined, log: () => undefined }, ["diffrelay"]);
}

const MB = 1024 * 1024;
const num = (v: number | undefined) => (v === undefined ? null : v);
const sum = (o: Record<string, number> | undefined) =>
  o ? Object.values(o).reduce((a, b) => a + b, 0) : undefined;

function smallFigures(d: SmallResult, n: SmallResult, figures: Figure[]): void {
  if (!d.shared && !n.shared) return;
  const s = "1 small txns";
  const dr = d.diffrelay;
  const nr = n.native;
  figures.push(
    figure(
      s,
      "end-to-end rate, first commit → last change on standby",
      "txn/s",
      num(dr?.endToEndTps),
      num(nr?.endToEndTps),
      {
        text: "≥ 1.2× native",
        pass: (a, b) => b !== null && a >= 1.2 * b,
      },
    ),
    figure(
      s,
      "primary commit rate under the burst (pgbench)",
      "txn/s",
      num(d.shared?.primaryTps),
      num(n.shared?.primaryTps),
    ),
    figure(s, "tail lag after the burst", "ms", num(dr?.tailLagMs), num(nr?.tailLagMs)),
  );
  const rate = d.shared?.offeredRate;
  const targets: Record<string, { text: string; pass: (a: number) => boolean }> = {
    p50: { text: "≤ 2 ms", pass: (a) => a <= 2 },
    p99: { text: "≤ 10 ms", pass: (a) => a <= 10 },
  };
  for (const [load, key] of [
    ["", "latency"],
    [", one bulk INSERT meanwhile", "latencyUnderBulk"],
  ] as const) {
    for (const p of ["p50", "p95", "p99"] as const) {
      figures.push(
        figure(
          s,
          `commit → standby commit latency ${p} at ${rate} txn/s${load}`,
          "ms",
          num(dr?.[key]?.[`${p}Ms`]),
          num(nr?.[key]?.[`${p}Ms`]),
          load === "" ? targets[p] : undefined,
        ),
      );
    }
  }
}

function commitLatencyFigures(c: CommitLatencyResult, figures: Figure[]): void {
  const s = "7 commit latency";
  const at = `at ${c.offeredRate} txn/s`;
  const pairs = [
    [
      "no synchronous standby (diffrelay: zero-loss off; PostgreSQL: asynchronous subscription)",
      c.zeroLossOff,
      c.nativeAsync,
      false,
    ],
    [
      "synchronous (diffrelay: zero-loss on; PostgreSQL: the subscription as synchronous standby)",
      c.zeroLossOn,
      c.nativeSync,
      true,
    ],
    [
      "synchronous (diffrelay: zero-loss on; PostgreSQL: physical streaming, synchronous standby)",
      c.zeroLossOn,
      c.physicalSync,
      false,
    ],
  ] as const;
  for (const [what, d, n, targeted] of pairs) {
    for (const p of ["p50", "p99"] as const) {
      figures.push(
        figure(
          s,
          `primary commit latency ${p} ${at}, ${what}`,
          "ms",
          d[`${p}Ms`],
          n === null ? null : n[`${p}Ms`],
          targeted && p === "p99"
            ? { text: "≤ 2× native", pass: (a, b) => b !== null && a <= 2 * b }
            : undefined,
        ),
      );
    }
  }
}

function catchUpFigures(d: CatchUpResult, n: CatchUpResult, figures: Figure[]): void {
  const s = "5 catch-up";
  const txns = n.shared?.transactions ?? d.shared?.transactions;
  if (txns === undefined) return;
  const dr = d.diffrelay;
  const nr = n.native;
  const perChange = (cpu: Record<string, number> | undefined, rate: number | undefined) =>
    cpu && rate ? (sum(cpu) as number) / ((txns as number) / 1000) : null;
  figures.push(
    figure(
      s,
      `standby catch-up on a ${txns}-transaction backlog (diffrelay: applier draining Kafka)`,
      "txn/s",
      num(dr?.catchUp.changesPerSecond),
      num(nr?.catchUp.changesPerSecond),
      { text: "≥ 2× native", pass: (a, b) => b !== null && a >= 2 * b },
    ),
    figure(
      s,
      "catch-up CPU s/1k changes (diffrelay: apply + broker; native: walsender + apply worker)",
      "s",
      perChange(dr?.catchUp.cpuSeconds, dr?.catchUp.changesPerSecond),
      perChange(nr?.catchUp.cpuSeconds, nr?.catchUp.changesPerSecond),
    ),
    figure(
      s,
      "capture alone draining the slot's backlog into Kafka",
      "changes/s",
      num(dr?.capture?.changesPerSecond),
      null,
    ),
    figure(
      s,
      "capture alone: CPU s/1k changes (capture + its walsender)",
      "s",
      perChange(dr?.capture?.cpuSeconds, dr?.capture?.changesPerSecond),
      null,
    ),
  );
}

function bandwidthFigures(
  sd: SmallResult,
  sn: SmallResult,
  bd: BulkResult,
  bn: BulkResult,
  id: IdentityWalResult | undefined,
  figures: Figure[],
): void {
  const s = "3 bandwidth";
  if (sd.shared && sn.shared) {
    const per = (b: number, r: SmallResult) => b / (r.shared?.transactions || 1);
    figures.push(
      figure(
        s,
        "bytes per 1-column update (diffrelay: Kafka log; native: pgoutput)",
        "B",
        per(sd.shared.bytes.kafka, sd),
        per(sn.shared.bytes.pgoutput, sn),
        { text: "≤ 8 B, never above 12", pass: (a) => a <= 8 },
      ),
      figure(
        s,
        `physical replication (WAL) per update, identity ${identityName(sn.shared.bytes.identity)}`,
        "B",
        null,
        per(sn.shared.bytes.wal, sn),
      ),
      figure(s, "information floor per update (key + new value as text)", "B", null, sn.shared.floorBytes),
      figure(
        s,
        "bytes per 1-column update before Kafka's compression and record overhead (diffrelay's frames)",
        "B",
        sd.diffrelay?.published ? per(sd.diffrelay.published.bytes, sd) : null,
        null,
      ),
      figure(
        s,
        "source transactions per Kafka message in the burst",
        "txn",
        sd.diffrelay?.published?.messages ? sd.shared.transactions / sd.diffrelay.published.messages : null,
        null,
      ),
    );
    if (!simultaneous) {
      figures.push(
        figure(
          s,
          "pgoutput per update with the capture's REPLICA IDENTITY FULL",
          "B",
          null,
          per(sd.shared.bytes.pgoutput, sd),
        ),
      );
    }
  }
  if (bd.shared && bn.shared) {
    for (const step of BULK_STEPS) {
      const rows = bn.shared.rows;
      figures.push(
        figure(
          s,
          `bulk ${step}: bytes per row (diffrelay: Kafka log; native: pgoutput)`,
          "B",
          bd.shared.bytes[step].kafka / bd.shared.rows,
          bn.shared.bytes[step].pgoutput / rows,
          step === "insert" ? { text: "≤ 1/2 native", pass: (a, b) => b !== null && a <= b / 2 } : undefined,
        ),
        figure(
          s,
          `bulk ${step}: physical replication (WAL) per row`,
          "B",
          null,
          bn.shared.bytes[step].wal / rows,
        ),
        figure(s, `bulk ${step}: information floor per row`, "B", null, bn.shared.floorBytes[step]),
      );
    }
  }
  if (id) {
    // diffrelay's column holds the FULL pass (the identity the capture sets), PostgreSQL's the
    // DEFAULT pass (what native replication runs with): the ratio is what FULL costs the primary.
    const pair = (what: string, unit: string, of: (p: IdentityPass) => number) =>
      figure(
        "3 identity",
        `${what}, scratch table: REPLICA IDENTITY FULL (diffrelay) vs DEFAULT (native)`,
        unit,
        of(id.full),
        of(id.default),
      );
    figures.push(
      pair("WAL per 1-column update", "B", (p) => p.walPerUpdate),
      pair("pgoutput bytes per 1-column update", "B", (p) => p.pgoutputPerUpdate),
      pair("pgoutput decoding CPU s/1k updates (one backend)", "s", (p) => p.decodeCpuPer1k),
      pair("primary commit rate, pgbench 4 clients, nothing replicating", "txn/s", (p) => p.primaryTps),
    );
  }
}

function identityName(code: string): string {
  return code === "f" ? "FULL" : code === "d" ? "DEFAULT" : code;
}

function bulkFigures(d: BulkResult, n: BulkResult, figures: Figure[]): void {
  if (!d.shared) return;
  for (const step of BULK_STEPS) {
    figures.push(
      figure(
        "2 bulk",
        `${step} ${d.shared?.rows} rows in one transaction, end to end`,
        "rows/s",
        num(d.diffrelay?.rowsPerSecond[step]),
        num(n.native?.rowsPerSecond[step]),
        { text: "≥ 1.5× native", pass: (a, b) => b !== null && a >= 1.5 * b },
      ),
    );
  }
}

function cpuFigures(
  label: string,
  changes: number,
  d: Record<string, number> | undefined,
  n: Record<string, number> | undefined,
  figures: Figure[],
): void {
  const s = "4 resources";
  const per = (v: number | undefined) => (v === undefined ? null : (v / changes) * 1000);
  figures.push(
    figure(
      s,
      `${label}: CPU s/1k changes, capture process vs native walsender`,
      "s",
      per(d?.["diffrelay capture"]),
      per(n?.["native walsender"]),
    ),
    figure(
      s,
      `${label}: CPU s/1k changes, walsender decoding for the capture`,
      "s",
      per(d?.["diffrelay walsender"]),
      null,
    ),
    figure(
      s,
      `${label}: CPU s/1k changes, apply process vs native apply worker`,
      "s",
      per(d?.["diffrelay apply"]),
      per(n?.["native apply worker"]),
    ),
    figure(s, `${label}: CPU s/1k changes, Kafka broker`, "s", per(d?.["Kafka broker"]), null),
    figure(s, `${label}: CPU s/1k changes, all processes of each system`, "s", per(sum(d)), per(sum(n)), {
      text: "≤ 1.0× native",
      pass: (a, b) => b !== null && a <= b,
    }),
  );
}

function resourceFigures(
  sd: SmallResult,
  sn: SmallResult,
  bd: BulkResult,
  bn: BulkResult,
  large: LargeResult | undefined,
  figures: Figure[],
): void {
  const s = "4 resources";
  if (sd.shared)
    cpuFigures(
      "small txns burst",
      sd.shared.transactions,
      sd.diffrelay?.cpuSeconds,
      sn.native?.cpuSeconds,
      figures,
    );
  if (bd.shared) {
    cpuFigures(
      "bulk (3 steps)",
      bd.shared.rows * 3,
      bd.diffrelay?.cpuSeconds,
      bn.native?.cpuSeconds,
      figures,
    );
    const rss = bd.diffrelay?.peakRssBytes;
    figures.push(
      figure(s, "bulk: capture peak RSS (VmHWM)", "MB", rss ? rss.capture / MB : null, null),
      figure(s, "bulk: apply peak RSS (VmHWM)", "MB", rss ? rss.apply / MB : null, null),
    );
  }
  if (large) {
    figures.push(
      figure(
        s,
        `${large.rows}-row transaction: capture peak RSS`,
        "MB",
        large.capturePeakRssBytes / MB,
        null,
        {
          text: "≤ 256 MB",
          pass: (a) => a <= 256,
        },
      ),
      figure(s, `${large.rows}-row transaction: apply peak RSS`, "MB", large.applyPeakRssBytes / MB, null, {
        text: "≤ 384 MB",
        pass: (a) => a <= 384,
      }),
      figure(
        s,
        `${large.rows}-row transaction: end-to-end rate (diffrelay only)`,
        "rows/s",
        large.rowsPerSecond,
        null,
      ),
    );
  }
}

/** What a run measured, per scenario: stored in the results file, and all the table needs. */
interface RawResults {
  smallTransactions: { diffrelayRun: SmallResult; nativeRun: SmallResult };
  bulk: { diffrelayRun: BulkResult; nativeRun: BulkResult };
  identityWal: IdentityWalResult | undefined;
  largeTransaction: LargeResult | undefined;
  catchUp: { diffrelayRun: CatchUpResult; nativeRun: CatchUpResult };
  largeCommitVisible: { diffrelayRun: LargeVisibleResult; nativeRun: LargeVisibleResult };
  commitLatency: CommitLatencyResult | undefined;
}

function figuresOf(raw: RawResults): Figure[] {
  const { diffrelayRun: sd, nativeRun: sn } = raw.smallTransactions;
  const { diffrelayRun: bd, nativeRun: bn } = raw.bulk;
  const { diffrelayRun: cd, nativeRun: cn } = raw.catchUp;
  const { diffrelayRun: ld, nativeRun: ln } = raw.largeCommitVisible;
  const figures: Figure[] = [];
  smallFigures(sd, sn, figures);
  bulkFigures(bd, bn, figures);
  bandwidthFigures(sd, sn, bd, bn, raw.identityWal, figures);
  resourceFigures(sd, sn, bd, bn, raw.largeTransaction, figures);
  catchUpFigures(cd, cn, figures);
  if (raw.commitLatency) commitLatencyFigures(raw.commitLatency, figures);
  if (ld.shared)
    figures.push(
      figure(
        "6 large txn",
        `${ld.shared.rows}-row INSERT, commit → visible on the standby (native: streaming = ${ld.shared.nativeStreaming ?? "on"})`,
        "ms",
        num(ld.diffrelay?.commitToVisibleMs),
        num(ln.native?.commitToVisibleMs),
        { text: "≤ 1.0× native", pass: (a, b) => b !== null && a <= b },
      ),
    );
  return figures;
}

/** The measured scenarios, once: what one repetition gives. */
async function measure(ctx: BenchContext, nativeFirst: boolean): Promise<RawResults> {
  const empty = {} as SmallResult;
  const [sd, sn] = wants("small")
    ? await both((s) => smallTransactions(ctx, s), nativeFirst)
    : [empty, empty];
  const [bd, bn] = wants("bulk")
    ? await both((s) => bulk(ctx, s), nativeFirst)
    : [{} as BulkResult, {} as BulkResult];
  const id = wants("identity") ? await identityWal(ctx) : undefined;
  const large = wants("large") ? await largeTransaction(ctx) : undefined;
  const [ld, ln] = wants("largevis")
    ? await both((s) => largeCommitVisible(ctx, s), nativeFirst)
    : [{} as LargeVisibleResult, {} as LargeVisibleResult];
  const [cd, cn] = wants("catchup")
    ? await both((s) => catchUp(ctx, s), nativeFirst)
    : [{} as CatchUpResult, {} as CatchUpResult];
  const commit = wants("commit") ? await commitLatency(ctx) : undefined;
  return {
    smallTransactions: { diffrelayRun: sd, nativeRun: sn },
    bulk: { diffrelayRun: bd, nativeRun: bn },
    identityWal: id,
    largeTransaction: large,
    catchUp: { diffrelayRun: cd, nativeRun: cn },
    largeCommitVisible: { diffrelayRun: ld, nativeRun: ln },
    commitLatency: commit,
  };
}

/** --report: an earlier run's table under today's targets, from its results file; nothing runs. */
function report(file: string): void {
  const results = JSON.parse(readFileSync(file, "utf8")) as {
    mode: string;
    startedAt: string;
    postgresVersion?: string;
    raw: RawResults;
    repetitions?: RawResults[];
  };
  simultaneous = results.mode === "simultaneous";
  console.log(`Run of ${results.startedAt}, PostgreSQL ${results.postgresVersion ?? "unknown"}\n`);
  console.log(markdownTable(combineRepeats((results.repetitions ?? [results.raw]).map(figuresOf))));
}

async function main(): Promise<void> {
  const startedAt = new Date();
  const stamp = startedAt.toISOString().replace(/[:.]/g, "-");
  const resultsDir = join(process.cwd(), "bench", "results");
  mkdirSync(resultsDir, { recursive: true });
  const profileDir = args.has("--profile") ? join(resultsDir, `profiles-${stamp}`) : undefined;
  log(
    `bench: starting the bench stack in ${benchStackDir(pg)} (mode: ${simultaneous ? "simultaneous" : "sequential"}${tiny ? ", tiny" : ""})`,
  );
  const stack = await openBenchStack(log, pg);
  log(`bench: PostgreSQL ${stack.postgresVersion}`);
  const logDir = join(stack.baseDir, "logs");
  const ctx: BenchContext = { stack, sizes, logDir, profileDir, log };
  try {
    if (warmingUp) await warmUp(ctx);
    const raws: RawResults[] = [];
    for (let r = 0; r < repeat; r++) {
      if (repeat > 1) log(`bench: repetition ${r + 1} of ${repeat}${r % 2 === 1 ? ", native first" : ""}`);
      raws.push(await measure(ctx, r % 2 === 1));
    }
    const raw = raws[0] as RawResults;
    const figures = combineRepeats(raws.map(figuresOf));

    const profiles: Record<string, { name: string; selfMs: number; share: number }[]> = {};
    const allocations: Record<string, Allocations> = {};
    if (profileDir) {
      const { readdirSync } = await import("node:fs");
      for (const runDir of readdirSync(profileDir)) {
        for (const [pid, file] of profilesByPid(join(profileDir, runDir), "cpu")) {
          profiles[`${runDir} pid ${pid}`] = topSelfTime(file);
        }
        for (const [pid, file] of profilesByPid(join(profileDir, runDir), "allocations")) {
          allocations[`${runDir} pid ${pid}`] = topAllocations(file);
        }
      }
    }
    const file = join(resultsDir, `${stamp}.json`);
    const results = {
      startedAt: startedAt.toISOString(),
      finishedAt: new Date().toISOString(),
      mode: simultaneous ? "simultaneous" : "sequential",
      tiny,
      warmedUp: warmingUp,
      sizes,
      postgresVersion: stack.postgresVersion,
      machine: {
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model,
        memoryBytes: totalmem(),
        node: process.version,
      },
      figures,
      raw,
      repetitions: raws.length > 1 ? raws : undefined,
      profiles,
      allocations,
    };
    writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
    console.log(`PostgreSQL ${stack.postgresVersion}\n`);
    console.log(markdownTable(figures));
    for (const [name, top] of Object.entries(profiles)) {
      console.log(`\nprofile ${name}: top functions by self time`);
      for (const f of top)
        console.log(
          `  ${(f.share * 100).toFixed(1).padStart(5)}%  ${f.selfMs.toFixed(0).padStart(7)} ms  ${f.name}`,
        );
    }
    for (const [name, { totalBytes, top }] of Object.entries(allocations)) {
      console.log(`\nallocations ${name}: ${(totalBytes / 1e6).toFixed(0)} MB in all; top sites (< caller)`);
      for (const a of top)
        console.log(
          `  ${(a.share * 100).toFixed(1).padStart(5)}%  ${(a.bytes / 1e6).toFixed(0).padStart(6)} MB  ${a.site}`,
        );
    }
    log(`bench: results in ${file}`);
  } finally {
    if (stack.startedHere && !args.has("--keep-stack")) {
      log("bench: stopping the bench stack this run started");
      await stopStack({ baseDir: stack.baseDir });
    }
  }
}

(reportOf === undefined ? main() : Promise.resolve(report(reportOf))).catch((err) => {
  console.error(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  process.exitCode = 1;
});
