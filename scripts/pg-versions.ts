// `npm run test:pg-versions [-- NAME...]`: the end-to-end subset on every PostgreSQL major the suite does not
// run on (15 is `npm test`'s, Debian's), source and standbys on the same version, plus the upgrade path users
// ask for (source 14, standbys 18). Each version gets its own three clusters in a temp dir; one Kafka broker
// serves them all (its start is the slowest part of a stack). Prints a version × suite table and how long
// each part took; stops and deletes everything it started, also when a run fails. NAME picks entries
// (14, 16, 17, 18, 14-18).
import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { stackEnv, startStack, stopStack } from "./stack/index.js";
import { type PgFlavor, REPO_ROOT } from "./stack/stack-state.js";

interface MatrixEntry {
  name: string;
  pg: PgFlavor;
  standbyPg?: PgFlavor;
}

const MATRIX: MatrixEntry[] = [
  { name: "14", pg: "14" },
  { name: "16", pg: "16" },
  { name: "17", pg: "17" },
  { name: "18", pg: "18" },
  { name: "14-18", pg: "14", standbyPg: "18" },
];

/** The end-to-end subset, by suite (tests left out below). Chosen to fit the CI budget (≤ 12 min for the step). */
const SUITES: Record<string, string[]> = {
  replication: ["test/integration/smoke.test.ts"],
  types: ["test/integration/capture-type-matrix.test.ts"],
  ddl: ["test/integration/ddl-exact-replay.test.ts"],
  "seed/verify": [
    "test/integration/seed-exact-settings.test.ts",
    "test/integration/verify-differences.test.ts",
  ],
  switchover: ["test/integration/cluster-switchover.test.ts"],
  doctor: ["test/integration/doctor.test.ts"],
};
/**
 * Left out by name: the smoke file's private-stack test checks the stack script, not PostgreSQL, and would
 * start a second Kafka; of the switchover file, the four tests after the bootstrap and the ring of switchovers
 * under load check the nodes' own rules (a restart's role, concurrent switchovers, a primary that never fences,
 * an older epoch), which do not depend on the PostgreSQL version, and would take about 4 min per entry; of the
 * doctor file, all but its working setup (every check against each server, which 14 failed before).
 */
const LEFT_OUT = [
  "local stack lifecycle",
  "a node restarted with its own command line",
  "of two concurrent switchovers",
  "whose old primary never fences",
  "a primary left on an older epoch",
  "fails a standby that lacks a published table",
  "fails an apply role without SET on session_replication_role",
  "fails a data topic with 2 partitions",
  "fails a standby whose position the topic no longer holds",
  "fails a source whose wal_level is not logical",
];

interface Outcome {
  entry: MatrixEntry;
  version: string;
  seconds: number;
  counts: Record<string, { passed: number; failed: number }>;
  error?: string;
}

const log = (m: string) => console.error(`[pg-versions] ${m}`);
const regexEscape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

interface VitestReport {
  testResults: { name: string; assertionResults: { status: string }[] }[];
}

function runVitest(files: string[], env: NodeJS.ProcessEnv, report: string): Promise<number> {
  const vitest = join(REPO_ROOT, "node_modules", "vitest", "vitest.mjs");
  const args = [
    vitest,
    "run",
    ...files,
    "--testNamePattern",
    `^(?!.*(${LEFT_OUT.map(regexEscape).join("|")}))`,
    "--reporter=default",
    "--reporter=json",
    `--outputFile=${report}`,
  ];
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, env, stdio: "inherit" });
    child.on("error", reject);
    child.on("exit", (code, signal) => resolvePromise(code ?? (signal ? 128 : 1)));
  });
}

function countBySuite(report: string): Outcome["counts"] {
  const counts: Outcome["counts"] = {};
  const parsed = JSON.parse(readFileSync(report, "utf8")) as VitestReport;
  for (const [suite, files] of Object.entries(SUITES)) {
    const c = { passed: 0, failed: 0 };
    for (const file of parsed.testResults.filter((r) => files.includes(relative(REPO_ROOT, r.name)))) {
      for (const a of file.assertionResults) {
        if (a.status === "passed") c.passed++;
        else if (a.status === "failed") c.failed++;
      }
    }
    counts[suite] = c;
  }
  return counts;
}

async function runEntry(entry: MatrixEntry, brokers: string, workDir: string): Promise<Outcome> {
  const t0 = Date.now();
  const baseDir = join(workDir, `pg-${entry.name}`);
  const outcome: Outcome = { entry, version: "", seconds: 0, counts: {} };
  try {
    const started = await startStack({
      baseDir,
      pg: entry.pg,
      standbyPg: entry.standbyPg,
      kafka: false,
      log,
    });
    const versions = ["primary", "standby1"].map((n) => started.state.pg[n]?.version ?? "?");
    outcome.version = versions[0] === versions[1] ? (versions[0] ?? "?") : versions.join(" → ");
    log(`${entry.name}: PostgreSQL ${outcome.version} up in ${Math.round((Date.now() - t0) / 1000)} s`);
    const env = stackEnv({ baseDir });
    const report = join(workDir, `report-${entry.name}.json`);
    const rc = await runVitest(
      Object.values(SUITES).flat(),
      {
        ...process.env,
        DIFFRELAY_TEST_SERVICES: "env",
        DIFFRELAY_TEST_SOURCE_URL: env.DIFFRELAY_SOURCE_URL,
        DIFFRELAY_TEST_STANDBY_URLS: [env.DIFFRELAY_STANDBY1_URL, env.DIFFRELAY_STANDBY2_URL].join(","),
        DIFFRELAY_TEST_KAFKA_BROKERS: brokers,
      },
      report,
    );
    outcome.counts = countBySuite(report);
    const failed = Object.values(outcome.counts).reduce((n, c) => n + c.failed, 0);
    if (rc !== 0 && failed === 0) outcome.error = `vitest exited ${rc}`;
  } catch (err) {
    outcome.error = err instanceof Error ? err.message : String(err);
  } finally {
    await stopStack({ baseDir, purge: true }).catch((err) => {
      outcome.error = `${outcome.error ?? ""} stopping its stack: ${(err as Error).message}`.trim();
    });
    outcome.seconds = Math.round((Date.now() - t0) / 1000);
  }
  return outcome;
}

function table(outcomes: Outcome[]): string {
  const suites = Object.keys(SUITES);
  const rows = [
    ["source → standby", "PostgreSQL", ...suites, "time"],
    ...outcomes.map((o) => [
      o.entry.standbyPg ? `${o.entry.pg} → ${o.entry.standbyPg}` : `${o.entry.pg} → ${o.entry.pg}`,
      o.version || "-",
      ...suites.map((s) => {
        const c = o.counts[s];
        if (!c) return "not run";
        // A file that failed to load or start reports no test: that is a failure too.
        if (c.passed + c.failed === 0) return "FAILED: no test ran";
        return c.failed ? `FAILED ${c.failed} of ${c.passed + c.failed}` : `passed ${c.passed}/${c.passed}`;
      }),
      `${o.seconds} s`,
    ]),
  ];
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  const line = (r: string[]) => `| ${r.map((cell, i) => cell.padEnd(widths[i] ?? 0)).join(" | ")} |`;
  return [line(rows[0] ?? []), line(widths.map((w) => "-".repeat(w))), ...rows.slice(1).map(line)].join("\n");
}

async function main(): Promise<number> {
  const wanted = process.argv.slice(2);
  const unknown = wanted.filter((w) => !MATRIX.some((e) => e.name === w));
  if (unknown.length) {
    console.error(`unknown entry ${unknown.join(", ")} (${MATRIX.map((e) => e.name).join(", ")})`);
    return 2;
  }
  const entries = wanted.length ? MATRIX.filter((e) => wanted.includes(e.name)) : MATRIX;
  const t0 = Date.now();
  // "diffrelay-stack-" in the name: .ci/run's leftover check looks for processes under such dirs.
  const workDir = mkdtempSync(join(tmpdir(), "diffrelay-stack-pgversions-"));
  // mkdtemp makes it 0700: the postgres OS user must traverse it to reach its clusters' folders.
  chmodSync(workDir, 0o711);
  const kafkaDir = join(workDir, "kafka");
  const stopAll = async () => {
    await Promise.allSettled([
      stopStack({ baseDir: kafkaDir, purge: true }),
      ...entries.map((e) => stopStack({ baseDir: join(workDir, `pg-${e.name}`), purge: true })),
    ]);
    rmSync(workDir, { recursive: true, force: true });
  };
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    process.once(signal, () => {
      log(`${signal}: stopping what this run started`);
      void stopAll().finally(() => process.exit(130));
    });
  }
  const outcomes: Outcome[] = [];
  try {
    const kafka = await startStack({ baseDir: kafkaDir, clusters: [], kafka: true, log });
    const brokers = kafka.env.DIFFRELAY_KAFKA_BROKERS as string;
    log(`kafka ${brokers} up in ${Math.round((Date.now() - t0) / 1000)} s`);
    for (const entry of entries) {
      outcomes.push(await runEntry(entry, brokers, workDir));
      log(`${entry.name}: done in ${outcomes.at(-1)?.seconds} s`);
    }
  } finally {
    await stopAll();
  }
  console.log(
    `\nPostgreSQL versions (npm run test:pg-versions), ${Math.round((Date.now() - t0) / 1000)} s in all:`,
  );
  console.log(table(outcomes));
  for (const o of outcomes.filter((o) => o.error)) console.log(`${o.entry.name}: ${o.error}`);
  const bad = outcomes.filter(
    (o) => o.error || Object.values(o.counts).some((c) => c.failed > 0 || c.passed === 0),
  );
  return bad.length || outcomes.length < entries.length ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  },
);
