// `npm run demo`: the whole job on the local stack, as a new user would see it.
// Starts the stack, creates a sample shop on the primary and both standbys, runs
// capture and two appliers, drives a pgbench write load while showing live status,
// then checks both standbys against the primary and prints the bytes per change
// next to what PostgreSQL's own logical and physical replication would have sent.
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import {
  fetchMetric,
  fetchStatus,
  type RunningService,
  startDiffrelay,
  stopService,
} from "./demo/child-services.js";
import { pgbenchScript, SAMPLE_DDL, sampleRows } from "./demo/sample-schema.js";
import {
  createMeasuringSlot,
  currentWalLsnText,
  dropSlot,
  kafkaTopicLogBytes,
  pgoutputBytes,
  walBytesBetween,
} from "./measure/bandwidth.js";
import { runPgbench } from "./measure/pgbench.js";
import { freePort } from "./stack/free-port.js";
import { DEFAULT_BASE_DIR, startStack } from "./stack/index.js";

const DB = "demo";
const ACCOUNTS = Number(process.env.DEMO_ACCOUNTS ?? 20_000);
const LOAD_SECONDS = Number(process.env.DEMO_SECONDS ?? 15);
const TOPIC = "diffrelay.demo";
const SLOT = "diffrelay_demo";
const MEASURE_SLOT = "diffrelay_demo_native";

const services: RunningService[] = [];
let stopping = false;

function say(line: string): void {
  console.log(line);
}

function withDb(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

async function sql<T extends pg.QueryResultRow>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client(url);
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
}

async function recreateDatabase(serverUrl: string): Promise<string> {
  await sql(
    serverUrl,
    `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '${DB}'`,
  );
  await sql(serverUrl, `DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await sql(serverUrl, `CREATE DATABASE ${DB}`);
  return withDb(serverUrl, DB);
}

async function statusLine(): Promise<string> {
  const parts = await Promise.all(
    services.map(async (s) => {
      const st = await fetchStatus(s);
      if (!st) return `${s.name}: (starting)`;
      if (st.role === "capture") return `capture: slot lag ${st.slotLagBytes} B, ${st.transactions} txns`;
      return `${s.name}: lag ${st.offsetLag} msgs / ${Number(st.timeLagSeconds ?? 0).toFixed(2)} s`;
    }),
  );
  return parts.join(" | ");
}

async function waitForCatchUp(primary: string, standbys: string[]): Promise<void> {
  // A marker row written last: once each standby has it, it holds everything before it.
  const marker = `demo marker ${Date.now()}`;
  await sql(primary, `INSERT INTO audit_log VALUES (now(), -1, '${marker}')`);
  const deadline = Date.now() + 120_000;
  for (const standby of standbys) {
    for (;;) {
      const rows = await sql<{ n: string }>(
        standby,
        `SELECT count(*)::text AS n FROM audit_log WHERE account = -1 AND message = '${marker}'`,
      );
      if (rows[0]?.n === "1") break;
      if (Date.now() > deadline)
        throw new Error("standbys did not catch up within 120 s; see .stack/logs/demo-*.log");
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

/** Runs a diffrelay command to its end and returns its output; an exit code not in `ok` fails the demo. */
function runDiffrelay(
  args: string[],
  env: NodeJS.ProcessEnv,
  ok: number[] = [0],
): Promise<{ output: string; code: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["bin/diffrelay.js", ...args], {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d) => {
      output += d;
    });
    child.stderr.on("data", (d) => {
      output += d;
    });
    child.on("error", reject);
    child.on("exit", (code) =>
      ok.includes(code ?? -1)
        ? resolve({ output, code: code ?? -1 })
        : reject(new Error(`diffrelay ${args[0]} exited ${code}:\n${output}`)),
    );
  });
}

async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await Promise.all(services.map(stopService));
}

async function main(): Promise<void> {
  process.on("SIGINT", () => {
    say("\ninterrupted: stopping capture and appliers");
    shutdown().then(() => process.exit(130));
  });
  say("1/6 starting the local stack (PostgreSQL primary + 2 standbys, Kafka)");
  const stack = await startStack({ log: () => undefined });
  const env = stack.env;
  const primaryServer = env.DIFFRELAY_SOURCE_URL as string;
  const primary = await recreateDatabase(primaryServer);
  const standbys = [
    await recreateDatabase(env.DIFFRELAY_STANDBY1_URL as string),
    await recreateDatabase(env.DIFFRELAY_STANDBY2_URL as string),
  ];
  say(`   sample shop on the primary: ${ACCOUNTS} accounts, ${ACCOUNTS} orders, an audit log`);
  await sql(primary, SAMPLE_DDL + sampleRows(ACCOUNTS));
  const brokers = env.DIFFRELAY_KAFKA_BROKERS as string;
  const admin = new (await import("kafkajs")).default.Kafka({ brokers: [brokers], logLevel: 0 }).admin();
  await admin.connect();
  const existing = await admin.listTopics();
  const stale = existing.filter((t) => t === TOPIC || t === `${TOPIC}.schemas`);
  if (stale.length) await admin.deleteTopics({ topics: stale });
  await admin.disconnect();

  const logDir = join(DEFAULT_BASE_DIR, "logs");
  const common = {
    DIFFRELAY_KAFKA_BROKERS: brokers,
    DIFFRELAY_TOPIC: TOPIC,
    DIFFRELAY_SLOT: SLOT,
    DIFFRELAY_PUBLICATION: SLOT,
    DIFFRELAY_SOURCE_URL: primary,
  };
  say("2/6 starting capture, then seeding both standbys from a live snapshot (logs: .stack/logs/demo-*.log)");
  services.push(startDiffrelay("capture", ["capture"], common, await freePort(), logDir));
  // The capture creates its slot at start; seed refuses without it (nothing would follow the snapshot).
  for (let waited = 0; ; waited += 200) {
    const rows = await sql(primary, `SELECT 1 FROM pg_replication_slots WHERE slot_name = '${SLOT}'`);
    if (rows.length) break;
    if (waited > 60_000) throw new Error("capture did not create its slot; see .stack/logs/demo-capture.log");
    await new Promise((r) => setTimeout(r, 200));
  }
  for (const [i, url] of standbys.entries()) {
    const name = `standby${i + 1}`;
    const { output: seeded } = await runDiffrelay(["seed", "--create-schema"], {
      ...common,
      DIFFRELAY_STANDBY_NAME: name,
      DIFFRELAY_STANDBY_URL: url,
    });
    const summary = seeded.split("\n").find((line) => line.includes("seed complete")) ?? "";
    say(`   ${name} seeded at ${/"consistentPoint":"([^"]+)"/.exec(summary)?.[1] ?? "?"}`);
  }

  say("3/6 starting one applier per standby");
  for (const [i, url] of standbys.entries()) {
    const name = `standby${i + 1}`;
    services.push(
      startDiffrelay(
        name,
        ["apply"],
        { ...common, DIFFRELAY_STANDBY_NAME: name, DIFFRELAY_STANDBY_URL: url },
        await freePort(),
        logDir,
      ),
    );
  }
  await waitForCatchUp(primary, standbys);

  say(`4/6 pgbench: 4 clients, ${LOAD_SECONDS} s of single-row UPDATE + INSERT transactions`);
  const measure = new pg.Client(primary);
  await measure.connect();
  await dropSlot(measure, MEASURE_SLOT);
  await createMeasuringSlot(measure, MEASURE_SLOT);
  const walBefore = await currentWalLsnText(measure);
  const kafkaDir = join(DEFAULT_BASE_DIR, "kafka", "data");
  const kafkaBefore = kafkaTopicLogBytes(kafkaDir, TOPIC);
  const scriptDir = mkdtempSync(join(tmpdir(), "diffrelay-demo-"));
  writeFileSync(join(scriptDir, "load.sql"), pgbenchScript(ACCOUNTS));
  const ticker = setInterval(() => {
    statusLine().then((line) => say(`   ${line}`));
  }, 2000);
  const bench = await runPgbench([
    "-n",
    "-c",
    "4",
    "-j",
    "2",
    "-T",
    String(LOAD_SECONDS),
    "-f",
    join(scriptDir, "load.sql"),
    primary,
  ]);
  clearInterval(ticker);
  const txns = bench.transactions;
  say(`   pgbench committed ${txns} transactions (${bench.tps.toFixed(0)} txn/s on the primary)`);

  say("5/6 waiting for both standbys to catch up, then verifying them against the primary");
  await waitForCatchUp(primary, standbys);
  const statusUrls = [
    "--capture-status-url",
    (services[0] as RunningService).statusUrl,
    "--apply-status-urls",
    services
      .slice(1)
      .map((s) => s.statusUrl)
      .join(","),
  ];
  const { output: status } = await runDiffrelay(["status", ...statusUrls], {
    ...common,
    DIFFRELAY_STANDBYS: standbys.map((url, i) => `standby${i + 1}=${url}`).join(","),
  });
  for (const line of status.trimEnd().split("\n")) say(`   ${line}`);
  let allEqual = true;
  for (const [i, url] of standbys.entries()) {
    const name = `standby${i + 1}`;
    const verified = await runDiffrelay(
      ["verify"],
      { ...common, DIFFRELAY_STANDBY_NAME: name, DIFFRELAY_STANDBY_URL: url },
      [0, 6],
    );
    const equal = verified.code === 0;
    allEqual &&= equal;
    say(`   verify ${name}: ${equal ? "an exact copy of the primary" : "DIFFERENT"}`);
    if (!equal) say(verified.output);
  }

  say("6/6 bytes that crossed the interconnect for the pgbench load, per standby");
  const walAfter = await currentWalLsnText(measure);
  const changes = txns * 2;
  const native = await pgoutputBytes(measure, MEASURE_SLOT, SLOT);
  const wal = await walBytesBetween(measure, walBefore, walAfter);
  await dropSlot(measure, MEASURE_SLOT);
  await measure.end();
  const kafka = kafkaTopicLogBytes(kafkaDir, TOPIC) - kafkaBefore;
  const published = await fetchMetric(
    services[0] as RunningService,
    "diffrelay_capture_published_bytes_total",
  );
  const perChange = (bytes: number) => (changes ? (bytes / changes).toFixed(1) : "-");
  say(`   row changes: ${changes} (${txns} transactions of one UPDATE and one INSERT)`);
  say(`   diffrelay, Kafka log on the broker:        ${perChange(kafka).padStart(8)} B/change`);
  say(`   PostgreSQL logical replication (pgoutput): ${perChange(native).padStart(8)} B/change`);
  say(`   PostgreSQL physical replication (WAL):     ${perChange(wal).padStart(8)} B/change`);
  say(
    `   (diffrelay frames before Kafka compression: ${(published / 1024 / 1024).toFixed(1)} MiB in all since start)`,
  );
  await shutdown();
  say(
    allEqual
      ? "done: both standbys are exact copies of the primary"
      : "done: a standby DIFFERS from the primary",
  );
  say("the stack keeps running; stop it with: npm run stack -- down");
  process.exitCode = allEqual ? 0 : 1;
}

main().catch(async (err) => {
  console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
  await shutdown();
  process.exitCode = 1;
});
