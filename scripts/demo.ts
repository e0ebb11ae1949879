// `npm run demo`: the whole job on the local stack, as a new user would see it.
// Starts the stack and one `diffrelay node` per database server of it (a on the
// primary server, b and c on the standby servers), creates a sample shop on a,
// seeds b and c from a live snapshot, drives a pgbench write load while showing
// live status, verifies both standbys and prints the bytes per change next to
// what PostgreSQL's own logical and physical replication would have sent. It
// goes on with a switchover to b under a pgbench load routed by /primary: the
// cluster before and after, the write-unavailable window, a row written on b
// reaching a and c, and both verified against b. It ends with an automatic
// failover: b's server (its PostgreSQL and its node) is killed with -9 under
// that load, a standby (a or c) takes over by itself when b's lease lapses, and
// the time from the kill to its first write is printed; b's server comes back
// and its node rejoins as a standby of the new primary.
import { spawn } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import {
  fetchMetric,
  fetchStatus,
  probe,
  type RunningService,
  startDiffrelay,
  stopService,
} from "./demo/child-services.js";
import {
  type ClusterNodeProcess,
  type LoadRun,
  type RunningLoad,
  startPgbenchFollowingPrimary,
  writablePrimary,
} from "./demo/primary-following-pgbench.js";
import { pgbenchScript, SAMPLE_DDL, sampleRows } from "./demo/sample-schema.js";
import {
  createMeasuringSlot,
  currentWalLsnText,
  dropSlot,
  kafkaTopicLogBytes,
  pgoutputBytes,
  walBytesBetween,
} from "./measure/bandwidth.js";
import { pgbenchArgs, runPgbench } from "./measure/pgbench.js";
import { freePort } from "./stack/free-port.js";
import { startStack } from "./stack/index.js";
import { startCluster, stopCluster } from "./stack/postgres-cluster.js";
import { descendants } from "./stack/processes.js";

const DB = "demo";
const ACCOUNTS = Number(process.env.DEMO_ACCOUNTS ?? 20_000);
const LOAD_SECONDS = Number(process.env.DEMO_SECONDS ?? 15);
const CLUSTER = "demo";
const TOPIC_PREFIX = "diffrelay";
const SLOT = "diffrelay_demo";
const MEASURE_SLOT = "diffrelay_demo_native";
const CLIENTS = 4;
/** How long the load runs on the new primary after the switchover returned. */
const AFTER_SWITCHOVER_MS = 5000;

const services: RunningService[] = [];
let load: RunningLoad | null = null;
let stopping = false;

function say(line: string): void {
  console.log(line);
}

function sayIndented(text: string): void {
  for (const line of text.trimEnd().split("\n")) say(`   ${line}`);
}

function withDb(url: string, db: string): string {
  const u = new URL(url);
  u.pathname = `/${db}`;
  return u.toString();
}

/** A session that may write on a standby, whose node made client sessions read-only (verify, docs/operations.md). */
function writableSession(url: string): string {
  const u = new URL(url);
  u.searchParams.set("options", "-c default_transaction_read_only=off");
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
  // A slot in use cannot be dropped, and its database neither: an interrupted run may have left a
  // session on one (a verify's temporary slot, a capture's), which ends once the server notices.
  const deadline = Date.now() + 30_000;
  for (;;) {
    const active = await sql(
      serverUrl,
      `SELECT pg_terminate_backend(active_pid) FROM pg_replication_slots WHERE database = '${DB}' AND active_pid IS NOT NULL`,
    );
    if (active.length === 0) break;
    if (Date.now() > deadline)
      throw new Error(
        `replication slots of database ${DB} on ${new URL(serverUrl).host} stay in use; drop them by hand`,
      );
    await new Promise((r) => setTimeout(r, 200));
  }
  await sql(
    serverUrl,
    `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = '${DB}'`,
  );
  await sql(serverUrl, `DROP DATABASE IF EXISTS ${DB} WITH (FORCE)`);
  await sql(serverUrl, `CREATE DATABASE ${DB}`);
  return withDb(serverUrl, DB);
}

async function statusLine(nodes: ClusterNodeProcess[]): Promise<string> {
  const parts = await Promise.all(
    nodes.map(async ({ service: s }) => {
      const st = await fetchStatus(s);
      if (!st) return `${s.name}: (not answering)`;
      const service = (st.service ?? {}) as Record<string, unknown>;
      if (st.nodeRole === "primary")
        return `${s.name} primary: slot lag ${service.slotLagBytes} B, ${service.transactions} txns`;
      if (st.nodeRole === "standby")
        return `${s.name} standby: lag ${service.offsetLag} msgs / ${Number(service.timeLagSeconds ?? 0).toFixed(2)} s`;
      return `${s.name}: ${st.nodeRole}`;
    }),
  );
  return parts.join(" | ");
}

/** Writes a marker row on the primary and waits until every standby has it: then it holds everything before it. */
async function waitForCatchUp(primary: ClusterNodeProcess, standbys: ClusterNodeProcess[]): Promise<void> {
  const marker = `demo marker ${Date.now()}`;
  await sql(primary.databaseUrl, `INSERT INTO audit_log VALUES (now(), -1, '${marker}')`);
  const deadline = Date.now() + 120_000;
  for (const standby of standbys) {
    for (;;) {
      const rows = await sql<{ n: string }>(
        standby.databaseUrl,
        `SELECT count(*)::text AS n FROM audit_log WHERE account = -1 AND message = '${marker}'`,
      );
      if (rows[0]?.n === "1") break;
      if (Date.now() > deadline)
        throw new Error(
          `${standby.service.name} did not catch up with ${primary.service.name} within 120 s; see ${standby.service.logFile}`,
        );
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

async function waitForEndpoint(node: ClusterNodeProcess, path: string): Promise<void> {
  const deadline = Date.now() + 120_000;
  while ((await probe(node.service, path)) !== 200) {
    if (node.service.child.exitCode !== null)
      throw new Error(
        `node ${node.service.name} exited ${node.service.child.exitCode}; see ${node.service.logFile}`,
      );
    if (Date.now() > deadline)
      throw new Error(
        `node ${node.service.name}'s ${path} did not answer 200 within 120 s; see ${node.service.logFile}`,
      );
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** The data topic the primary captures to, from its /status once its capture has started. */
async function captureTopic(primary: ClusterNodeProcess): Promise<string> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const st = await fetchStatus(primary.service);
    const topic = (st?.service as { topic?: string } | undefined)?.topic;
    if (topic) return topic;
    if (Date.now() > deadline)
      throw new Error(
        `node ${primary.service.name}'s /status named no capture topic within 60 s; see ${primary.service.logFile}`,
      );
    await new Promise((r) => setTimeout(r, 200));
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

/** Runs a diffrelay command (Kafka's brokers from the environment, as after `eval "$(npm run -s stack -- env)"`) and shows it with its output. */
async function show(args: string[], env: NodeJS.ProcessEnv): Promise<void> {
  say(`   $ diffrelay ${args.join(" ")}`);
  sayIndented((await runDiffrelay(args, env)).output);
}

/** Verifies each standby against the primary at one snapshot of the primary; whether all are equal. */
async function verifyAll(
  primary: ClusterNodeProcess,
  standbys: ClusterNodeProcess[],
  common: NodeJS.ProcessEnv,
): Promise<boolean> {
  const topic = await captureTopic(primary);
  let allEqual = true;
  for (const standby of standbys) {
    const verified = await runDiffrelay(
      ["verify"],
      {
        ...common,
        DIFFRELAY_TOPIC: topic,
        DIFFRELAY_SOURCE_URL: primary.databaseUrl,
        DIFFRELAY_STANDBY_NAME: standby.service.name,
        DIFFRELAY_STANDBY_URL: writableSession(standby.databaseUrl),
      },
      [0, 6],
    );
    const equal = verified.code === 0;
    allEqual &&= equal;
    say(
      `   verify ${standby.service.name} against ${primary.service.name}: ${equal ? "an exact copy" : "DIFFERENT"}`,
    );
    if (!equal) say(verified.output);
  }
  return allEqual;
}

/** What the load did on each side of the switchover, as its clients saw it; no write on the new primary fails the demo. */
function describeLoad(
  runs: LoadRun[],
  oldPrimary: ClusterNodeProcess,
  newPrimary: ClusterNodeProcess,
): string[] {
  const [from, to] = [oldPrimary.service.name, newPrimary.service.name];
  const on = (node: string) => runs.filter((r) => r.node === node);
  const sum = (rs: LoadRun[]) => rs.reduce((n, r) => n + r.transactions, 0);
  const cut = on(from).find((r) => r.cutOffBy !== null);
  const lastOnOld = cut ?? on(from).at(-1);
  const resumed = on(to).find((r) => r.transactions > 0);
  if (!lastOnOld || !resumed)
    throw new Error(
      `the load did not write on both sides of the switchover (${sum(on(from))} transactions on ${from}, ${sum(on(to))} on ${to}); see ${newPrimary.service.logFile}`,
    );
  const last = on(to).at(-1) as LoadRun;
  const seconds = (last.endedAt - resumed.startedAt) / 1000;
  return [
    `pgbench on ${from}: ${sum(on(from))} transactions, then ${cut ? `the fence cut its clients off ("${cut.cutOffBy}")` : "its last run ended just before the fence"}`,
    `pgbench on ${to}: writing again ${((resumed.startedAt - lastOnOld.endedAt) / 1000).toFixed(1)} s later, ${sum(on(to))} transactions (${(sum(on(to)) / seconds).toFixed(0)} txn/s)`,
  ];
}

async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await load?.stopAfter(0).catch(() => undefined);
  await Promise.all(services.map(stopService));
}

async function main(): Promise<void> {
  process.on("SIGINT", () => {
    say("\ninterrupted: stopping the load and the nodes");
    shutdown().then(() => process.exit(130));
  });
  say("1/9 starting the local stack (3 PostgreSQL servers, Kafka)");
  const stack = await startStack({ log: () => undefined });
  const env = stack.env;
  const servers = [
    env.DIFFRELAY_SOURCE_URL as string,
    env.DIFFRELAY_STANDBY1_URL as string,
    env.DIFFRELAY_STANDBY2_URL as string,
  ];
  const databases: string[] = [];
  for (const server of servers) databases.push(await recreateDatabase(server));
  say(`   sample shop on server 1: ${ACCOUNTS} accounts, ${ACCOUNTS} orders, an audit log`);
  await sql(databases[0] as string, SAMPLE_DDL + sampleRows(ACCOUNTS));
  const brokers = env.DIFFRELAY_KAFKA_BROKERS as string;
  const admin = new (await import("kafkajs")).default.Kafka({ brokers: [brokers], logLevel: 0 }).admin();
  await admin.connect();
  // A fresh cluster: its state topic, epoch claims and every epoch's data topics from an earlier run go.
  const ours = (t: string) =>
    [`${TOPIC_PREFIX}.${CLUSTER}`, `${TOPIC_PREFIX}.cluster.${CLUSTER}`].some(
      (p) => t === p || t.startsWith(`${p}.`),
    );
  const stale = (await admin.listTopics()).filter(ours);
  if (stale.length) await admin.deleteTopics({ topics: stale });
  await admin.disconnect();

  const logDir = join(stack.state.baseDir, "logs");
  const common = { DIFFRELAY_KAFKA_BROKERS: brokers, DIFFRELAY_SLOT: SLOT, DIFFRELAY_PUBLICATION: SLOT };
  const names = ["a", "b", "c"];
  const ports = [await freePort(), await freePort(), await freePort()];
  const specs = names.map((name, i) => ({
    name,
    databaseUrl: databases[i] as string,
    port: ports[i] as number,
  }));
  const nodes: ClusterNodeProcess[] = [];
  const startNode = (i: number, extra: string[] = []): ClusterNodeProcess => {
    const spec = specs[i] as (typeof specs)[number];
    const members = specs.filter((s) => s !== spec).map((s) => `${s.name}=http://127.0.0.1:${s.port}`);
    const service = startDiffrelay(
      spec.name,
      [
        "node",
        "--cluster",
        CLUSTER,
        "--node-name",
        spec.name,
        "--database-url",
        spec.databaseUrl,
        "--members",
        members.join(","),
        ...extra,
      ],
      common,
      spec.port,
      logDir,
    );
    services.push(service);
    const node = { service, databaseUrl: spec.databaseUrl };
    nodes.push(node);
    return node;
  };
  say(
    `2/9 starting node a as the cluster's first primary, then seeding b and c from a live snapshot (logs: ${logDir}/demo-*.log)`,
  );
  const a = startNode(0, ["--initial-primary", "a"]);
  await waitForEndpoint(a, "/primary");
  // Its capture's session is up, so its slot exists: seed refuses without it (nothing would follow the snapshot).
  await waitForEndpoint(a, "/healthz");
  const firstTopic = await captureTopic(a);
  for (const i of [1, 2]) {
    const name = names[i] as string;
    const { output: seeded } = await runDiffrelay(["seed", "--create-schema", "--topic", firstTopic], {
      ...common,
      DIFFRELAY_SOURCE_URL: a.databaseUrl,
      DIFFRELAY_STANDBY_NAME: name,
      DIFFRELAY_STANDBY_URL: specs[i]?.databaseUrl,
    });
    const summary = seeded.split("\n").find((line) => line.includes("seed complete")) ?? "";
    say(`   ${name} seeded at ${/"consistentPoint":"([^"]+)"/.exec(summary)?.[1] ?? "?"}`);
  }

  say("3/9 starting nodes b and c: standbys of a, read-only to clients");
  const b = startNode(1);
  const c = startNode(2);
  for (const standby of [b, c]) await waitForEndpoint(standby, "/replica");
  await waitForCatchUp(a, [b, c]);

  say(`4/9 pgbench on a: ${CLIENTS} clients, ${LOAD_SECONDS} s of single-row UPDATE + INSERT transactions`);
  const measure = new pg.Client(a.databaseUrl);
  // A fence of a (its lease lapsed: a starved node) ends this session: say so, the next query fails with it.
  measure.on("error", (err) => say(`   the measuring session on a ended: ${err.message}`));
  await measure.connect();
  await dropSlot(measure, MEASURE_SLOT);
  await createMeasuringSlot(measure, MEASURE_SLOT);
  const walBefore = await currentWalLsnText(measure);
  if (!stack.state.kafka) throw new Error("the stack started without its Kafka broker");
  const kafkaDir = join(stack.state.kafka.dir, "data");
  const kafkaBefore = kafkaTopicLogBytes(kafkaDir, firstTopic);
  const scriptDir = mkdtempSync(join(tmpdir(), "diffrelay-demo-"));
  const script = join(scriptDir, "load.sql");
  writeFileSync(script, pgbenchScript(ACCOUNTS));
  const benchArgs = (url: string, seconds: number) =>
    pgbenchArgs(url, script, CLIENTS, "time", ["-T", String(seconds)]);
  const ticker = setInterval(() => {
    statusLine(nodes).then((line) => say(`   ${line}`));
  }, 2000);
  const bench = await runPgbench(benchArgs(a.databaseUrl, LOAD_SECONDS));
  clearInterval(ticker);
  const txns = bench.transactions;
  say(`   pgbench committed ${txns} transactions (${bench.tps.toFixed(0)} txn/s on a)`);

  say("5/9 waiting for b and c to catch up, then verifying them against a");
  await waitForCatchUp(a, [b, c]);
  let allEqual = await verifyAll(a, [b, c], common);

  say("6/9 bytes that crossed the interconnect for the pgbench load, per standby");
  const walAfter = await currentWalLsnText(measure);
  const changes = txns * 2;
  const native = await pgoutputBytes(measure, MEASURE_SLOT, SLOT);
  const wal = await walBytesBetween(measure, walBefore, walAfter);
  await dropSlot(measure, MEASURE_SLOT);
  await measure.end();
  const kafka = kafkaTopicLogBytes(kafkaDir, firstTopic) - kafkaBefore;
  const published = await fetchMetric(a.service, "diffrelay_capture_published_bytes_total");
  const perChange = (bytes: number) => (changes ? (bytes / changes).toFixed(1) : "-");
  say(`   row changes: ${changes} (${txns} transactions of one UPDATE and one INSERT)`);
  say(`   diffrelay, Kafka log on the broker:        ${perChange(kafka).padStart(8)} B/change`);
  say(`   PostgreSQL logical replication (pgoutput): ${perChange(native).padStart(8)} B/change`);
  say(`   PostgreSQL physical replication (WAL):     ${perChange(wal).padStart(8)} B/change`);
  say(
    `   (diffrelay frames before Kafka compression: ${(published / 1024 / 1024).toFixed(1)} MiB in all since start)`,
  );

  say(
    `7/9 switchover to b under a pgbench load of ${CLIENTS} clients that writes wherever /primary answers 200`,
  );
  load = startPgbenchFollowingPrimary(nodes, benchArgs);
  await new Promise((r) => setTimeout(r, 3000));
  await show(["list", "--cluster", CLUSTER, "--log-level", "warn"], common);
  await show(["switchover", "--cluster", CLUSTER, "--to", "b", "--log-level", "warn"], common);
  const runs = await load.stopAfter(AFTER_SWITCHOVER_MS);
  for (const line of describeLoad(runs, a, b)) say(`   ${line}`);
  // The nodes report every 5 s: wait for one report of each in its new role, so the listing shows it.
  await new Promise((r) => setTimeout(r, 5000));
  await show(["list", "--cluster", CLUSTER, "--log-level", "warn"], common);

  say("8/9 a row written on b, the new primary, reaches a and c; both verified against b");
  const t0 = Date.now();
  await waitForCatchUp(b, [a, c]);
  say(`   the row was on a and c ${Date.now() - t0} ms after b committed it`);
  allEqual = (await verifyAll(b, [a, c], common)) && allEqual;

  say(
    "9/9 automatic failover: b's whole server is killed (kill -9 of its PostgreSQL and its node) under the load; nobody runs a command",
  );
  load = startPgbenchFollowingPrimary(nodes, benchArgs);
  await new Promise((r) => setTimeout(r, 3000));
  const bServer = stack.state.pg.standby1;
  if (!bServer) throw new Error("the stack has no standby1 server (b's)");
  const bNode = b.service.child.pid as number;
  // The node and its fence watchdog, then the postmaster (its backends exit with it): the machine is gone.
  const killedAt = Date.now();
  for (const pid of [bNode, ...descendants(bNode)]) process.kill(pid, "SIGKILL");
  await stopCluster(bServer, "kill");
  let elected: ClusterNodeProcess | null = null;
  while (!elected) {
    elected = await writablePrimary([a, c]);
    if (!elected && Date.now() - killedAt > 120_000)
      throw new Error(
        `no standby took over within 120 s of b's death; see ${a.service.logFile}, ${c.service.logFile}`,
      );
    if (!elected) await new Promise((r) => setTimeout(r, 100));
  }
  const electedAfter = Date.now() - killedAt;
  const afterKill = await load.stopAfter(AFTER_SWITCHOVER_MS);
  const firstWrite = afterKill.find((r) => r.node === elected.service.name && r.transactions > 0);
  if (!firstWrite)
    throw new Error(
      `the load wrote nothing on ${elected.service.name} after it took over; see ${elected.service.logFile}`,
    );
  say(
    `   ${elected.service.name} took over by itself: /primary answered ${(electedAfter / 1000).toFixed(1)} s after the kill; its first pgbench transaction committed ${((firstWrite.startedAt - killedAt) / 1000).toFixed(1)} s after the kill (lease TTL 5 s by default)`,
  );
  await show(["list", "--cluster", CLUSTER, "--log-level", "warn"], common);
  say(
    "   b's server comes back: PostgreSQL restarts (crash recovery), its node starts with its own command line",
  );
  await startCluster(bServer);
  // b reaches the new primary's database as a peer: the stack's servers each have their own password.
  const peerPassword = decodeURIComponent(new URL(elected.databaseUrl).password);
  const rejoined = startNode(1, [`--peer-password=${peerPassword}`]);
  nodes.splice(nodes.indexOf(b), 1);
  const t1 = Date.now();
  await waitForEndpoint(rejoined, "/replica");
  const rejoin = (await fetchStatus(rejoined.service))?.rejoin as { state?: string } | undefined;
  say(
    `   b fenced itself, rejoined (${rejoin?.state ?? "?"}) and follows ${elected.service.name} ${((Date.now() - t1) / 1000).toFixed(1)} s after its start`,
  );
  const others = [a, c, rejoined].filter((n) => n !== elected);
  await waitForCatchUp(elected, others);
  allEqual = (await verifyAll(elected, others, common)) && allEqual;
  await shutdown();
  say(
    allEqual
      ? `done: ${elected.service.name} is the primary; the other two are exact copies of it`
      : "done: a node DIFFERS from its primary",
  );
  say(
    `the nodes are stopped; the stack keeps running with database ${DB} on each server; stop it with: npm run stack -- down`,
  );
  process.exitCode = allEqual ? 0 : 1;
}

main().catch(async (err) => {
  console.error(`demo failed: ${err instanceof Error ? err.message : String(err)}`);
  await shutdown();
  process.exitCode = 1;
});
