// Commit latency on the primary with and without zero-loss mode, in one run:
//   npm run build && node --import tsx scripts/measure/zero-loss-latency.ts [commits]
// Needs the local stack's broker (npm run stack -- up). The primary is a private cluster of its own
// (synchronous_standby_names is server-wide) with synchronous_commit = on; one client commits one-row
// INSERTs one after another: without a capture, with a capture, with a capture in zero-loss mode.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import kafkajs from "kafkajs";
import pg from "pg";
import { stackEnv } from "../stack/index.js";
import { clusterUrl, initCluster, startCluster, stopCluster } from "../stack/postgres-cluster.js";

const commits = Number(process.argv[2] ?? 300);
const brokers = stackEnv().DIFFRELAY_KAFKA_BROKERS;
if (!brokers) throw new Error("no Kafka broker in the stack: npm run stack -- up");

async function measure(url: string): Promise<{ p50: number; p99: number }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  const ms: number[] = [];
  try {
    for (let i = 0; i < commits; i++) {
      const started = process.hrtime.bigint();
      await client.query("INSERT INTO latency_probe DEFAULT VALUES");
      ms.push(Number(process.hrtime.bigint() - started) / 1e6);
    }
  } finally {
    await client.end();
  }
  ms.sort((a, b) => a - b);
  const at = (q: number) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))] as number;
  return { p50: at(0.5), p99: at(0.99) };
}

/** Starts `diffrelay capture` and resolves once it streams; the returned function stops it. */
async function capture(url: string, run: string, extra: string[]): Promise<() => Promise<void>> {
  const child = spawn(
    process.execPath,
    [
      "bin/diffrelay.js",
      "capture",
      "--source-url",
      url,
      "--brokers",
      brokers as string,
      "--topic",
      `latency_${run}`,
      ...extra,
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  let output = "";
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (d) => {
      output += d;
      if (output.includes('"logical replication started"')) resolve();
    });
    child.on("exit", (code) => reject(new Error(`capture exited ${code}: ${output.slice(-2000)}`)));
  });
  return async () => {
    child.removeAllListeners("exit");
    const exited = new Promise((r) => child.once("exit", r));
    child.kill("SIGTERM");
    await exited;
  };
}

const baseDir = mkdtempSync(join(tmpdir(), "diffrelay-latency-"));
const cluster = await initCluster(baseDir, "latency", "debian", () => undefined);
const run = Date.now().toString(36);
try {
  await startCluster(cluster);
  const url = clusterUrl(cluster);
  const admin = new pg.Client({ connectionString: url });
  await admin.connect();
  await admin.query("ALTER SYSTEM SET synchronous_commit = on");
  await admin.query("SELECT pg_reload_conf()");
  await admin.query("CREATE TABLE latency_probe (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())");
  await admin.end();
  const rows: [string, { p50: number; p99: number }][] = [];
  rows.push(["no capture", await measure(url)]);
  let stop = await capture(url, run, []);
  rows.push(["capture, zero-loss off", await measure(url)]);
  await stop();
  stop = await capture(url, run, ["--zero-loss"]);
  rows.push(["capture, zero-loss on", await measure(url)]);
  await stop();
  console.log(`${commits} sequential one-row commits, one client, synchronous_commit = on`);
  for (const [label, r] of rows)
    console.log(`${label.padEnd(24)} p50 ${r.p50.toFixed(1)} ms  p99 ${r.p99.toFixed(1)} ms`);
} finally {
  const kafkaAdmin = new kafkajs.Kafka({ brokers: [brokers], logLevel: kafkajs.logLevel.NOTHING }).admin();
  await kafkaAdmin
    .connect()
    .then(async () => {
      const ours = (await kafkaAdmin.listTopics()).filter((t) => t.startsWith(`latency_${run}`));
      await kafkaAdmin.deleteTopics({ topics: ours });
    })
    .catch(() => undefined)
    .finally(() => kafkaAdmin.disconnect());
  await stopCluster(cluster, "immediate").catch(() => undefined);
  rmSync(baseDir, { recursive: true, force: true });
}
