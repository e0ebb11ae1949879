// Failover of an HA cluster and the old primary's automatic rejoin (issue 13, items 4, 5 and 7): `diffrelay
// node` processes, the primary's on a private cluster (killed, and synchronous_standby_names is server-wide).
// kill -9 of the primary's postmaster under a write load whose clients log every id whose COMMIT returned,
// then `diffrelay failover --cluster … --to b`: it claims the next epoch, the standby nodes drain and change
// roles. Then the old postmaster starts again (and its node, where it was killed; one that lived on waits for
// its server): the node finds it is a primary the cluster left behind, fences its database, reports what it
// committed that never reached Kafka, undoes it and follows b.
// - zero-loss mode on: every acknowledged id is on the new primary; the rejoin finds at most the commits in
//   flight at the kill (committed locally, never acknowledged).
// - zero-loss mode off, the old node stopped (SIGSTOP) for a while before the kill so that acknowledged
//   commits never reach Kafka: failover exits 8, and the acknowledged ids missing on the new primary are
//   exactly the ids the rejoin reports (whatever is lost is exactly what is reported).
import { afterAll, describe, expect, it } from "vitest";
import { writeUntilDead } from "../support/acknowledged-writes.js";
import { spawnDiffrelay } from "../support/child-process.js";
import { TestCluster } from "../support/cluster-nodes.js";
import { type PrivatePostgres, startPrivatePostgres } from "../support/private-postgres.js";
import { stopProcess } from "../support/replication-pipeline.js";
import {
  createTestDatabase,
  runSql,
  type TestDatabase,
  testServices,
  uniqueName,
  withClient,
} from "../support/services.js";
import { compareTables, describeDifferences } from "../support/table-compare.js";
import { deleteTopics } from "../support/topic-reader.js";

const DDL = "CREATE TABLE acks (id bigint PRIMARY KEY, written_by int NOT NULL);";
const CLIENTS = 4;
const cleanups: (() => Promise<void>)[] = [];

afterAll(async () => {
  for (const cleanup of cleanups) await cleanup().catch(() => undefined);
});

interface Scenario {
  cluster: TestCluster;
  primary: PrivatePostgres;
  db: Map<string, TestDatabase>;
  /** Logs how far the scenario got and when: its wall time is part of CI's. */
  step: (what: string) => void;
}

/** Node a (the first primary) on a private server, the others on the stack's standby servers, seeded and following. */
async function startScenario(label: string, standbys: string[], zeroLoss: boolean): Promise<Scenario> {
  const services = testServices();
  const t0 = Date.now();
  const step = (what: string) =>
    console.log(`[${label}] ${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`);
  const name = uniqueName(label);
  const prefix = uniqueName(`${label}cl`);
  const primary = await startPrivatePostgres(`failover-cluster-${label}`);
  // The client's COMMIT returns once its WAL is flushed (the stack's default is off): a kill -9 keeps it.
  await primary.configure({ synchronous_commit: "on" });
  const db = new Map<string, TestDatabase>([["a", await createTestDatabase(primary.url, `${label}_a`)]]);
  for (const [i, s] of standbys.entries())
    db.set(s, await createTestDatabase(services.standbyUrls[i] as string, `${label}_${s}`));
  for (const d of db.values()) await runSql(d.url, DDL);
  const cluster = await TestCluster.create({
    name,
    databases: [...db].map(([n, d]) => ({ name: n, url: d.url })),
    brokers: services.kafkaBrokers,
    topicPrefix: prefix,
    tables: ["public.acks"],
  });
  cleanups.push(async () => {
    await cluster.stopAll();
    // First: with zero-loss on and no capture, dropping its database would wait for the capture.
    await primary.destroy();
    for (const s of standbys) await db.get(s)?.drop();
    const data = [`${prefix}.${name}`, `${prefix}.${name}.e1`];
    await deleteTopics(services.kafkaBrokers, [
      ...data.flatMap((t) => [t, `${t}.schemas`]),
      `${prefix}.cluster.${name}`,
      `${prefix}.cluster.${name}.claim.e0`,
      `${prefix}.cluster.${name}.claim.e1`,
    ]);
  });

  // The servers' passwords differ: a reaches b's database (its address is in b's report) with b's, when it
  // rejoins (its node may live through its server's death and rejoin without a restart).
  const peerPassword = decodeURIComponent(new URL(db.get("b")?.url as string).password);
  cluster.start("a", [
    "--initial-primary",
    "a",
    ...(zeroLoss ? ["--zero-loss"] : []),
    `--peer-password=${peerPassword}`,
  ]);
  await cluster.waitFor("a", "/primary", 200);
  for (const s of standbys) {
    const seed = spawnDiffrelay([
      "seed",
      "--source-url",
      db.get("a")?.url as string,
      "--standby-url",
      db.get(s)?.url as string,
      "--standby-name",
      s,
      "--brokers",
      services.kafkaBrokers.join(","),
      "--topic",
      `${prefix}.${name}`,
    ]);
    const seeded = await seed.exited;
    expect(seeded.code, seed.output()).toBe(0);
    cluster.start(s);
  }
  for (const s of standbys) await cluster.waitFor(s, "/replica", 200);
  step("cluster running");
  return { cluster, primary, db, step };
}

async function failover(c: TestCluster) {
  const run = spawnDiffrelay(["failover", ...c.clusterArgs(), "--to", "b", "--json"]);
  const exit = await run.exited;
  const line = run
    .output()
    .split("\n")
    .find((l) => l.startsWith('{"outcome"'));
  if (!line) throw new Error(`failover printed no report:\n${run.output()}`);
  return { code: exit.code, output: run.output(), report: JSON.parse(line) };
}

async function ids(url: string): Promise<Set<string>> {
  return new Set(
    await withClient(url, async (client) =>
      (await client.query<{ id: string }>("SELECT id::text FROM acks")).rows.map((r) => r.id),
    ),
  );
}

/**
 * The old primary's server and node start again; the node rejoins by itself. Returns the ids of the
 * transactions its /status reports as never having reached the new primary.
 */
async function restartAndRejoin(
  s: Scenario,
  nodeArgs: string[],
  first: () => Promise<void> = async () => undefined,
): Promise<string[]> {
  const { cluster } = s;
  await s.primary.restart();
  s.step("old primary's server restarted");
  await first();
  // A node whose server died lives on: it waits for the server, fences it once it answers, then rejoins.
  // One that was killed starts again (the servers' passwords differ: it reaches b's database with b's).
  const running = cluster.processes.get("a");
  const alive =
    running !== undefined &&
    (await Promise.race([
      running.exited.then(() => false),
      new Promise<boolean>((r) => setTimeout(() => r(true), 0)),
    ]));
  const peerPassword = decodeURIComponent(new URL(s.db.get("b")?.url as string).password);
  const node = alive ? running : cluster.start("a", [...nodeArgs, `--peer-password=${peerPassword}`]);
  const deadline = Date.now() + 120_000;
  while ((await cluster.probe("a", "/replica")) !== 200) {
    const failed = await cluster.status("a").then(
      (st) => (st.rejoin?.state === "failed" ? st.rejoin.error : null),
      () => null,
    );
    if (failed !== null || Date.now() > deadline)
      throw new Error(`a did not rejoin (${failed ?? "timeout"}):\n${node.output().slice(-5000)}`);
    await new Promise((r) => setTimeout(r, 500));
  }
  s.step("old primary's node rejoined");
  const status = await cluster.status("a");
  expect(status.nodeRole, JSON.stringify(status)).toBe("standby");
  expect(status.rejoin, JSON.stringify(status.rejoin).slice(0, 3000)).toMatchObject({
    state: "rejoined",
    epoch: 1,
    method: "rewind",
    error: null,
  });
  // The whole list is the report rejoin committed on the old primary before it repaired anything.
  const reported = await withClient(s.db.get("a")?.url as string, async (client) =>
    (
      await client.query<{ id: string; op: string; tbl: string }>(
        `SELECT c.ch->'key'->>'id' AS id, c.ch->>'op' AS op, c.ch->>'table' AS tbl
           FROM diffrelay.rejoin_report r,
                jsonb_array_elements(r.report->'unpublished') WITH ORDINALITY t(tx, i),
                jsonb_array_elements(t.tx->'changes') WITH ORDINALITY c(ch, j)
          WHERE r.id = $1 AND r.repaired_at IS NOT NULL
          ORDER BY t.i, c.j`,
        [status.rejoin.reportId],
      )
    ).rows.map((r) => {
      expect(r).toMatchObject({ op: "insert", tbl: "public.acks" });
      return r.id;
    }),
  );
  // /status lists them (one change each here), up to its bound, and counts the rest.
  const listed: string[] = status.rejoin.unpublished.flatMap((t: { changes: { key: { id: string } }[] }) =>
    t.changes.map((c) => String(c.key.id)),
  );
  expect(status.rejoin.unpublishedTotal).toBe(reported.length);
  expect(listed).toEqual(reported.slice(0, listed.length));
  expect(status.rejoin.transactionsLeftOut).toBe(reported.length - listed.length);
  expect(listed.length).toBe(Math.min(reported.length, 10_000));
  // Its report in the cluster topic, as `diffrelay list` shows it.
  const list = spawnDiffrelay(["list", ...cluster.clusterArgs(), "--json"]);
  expect((await list.exited).code, list.output()).toBe(0);
  const line = list
    .output()
    .split("\n")
    .find((l) => l.startsWith('{"cluster"'));
  if (!line) throw new Error(`list printed no listing:\n${list.output()}`);
  const listing = JSON.parse(line);
  const row = listing.nodes.find((n: { name: string }) => n.name === "a");
  expect(row.reported.rejoin).toMatchObject({
    state: "rejoined",
    method: "rewind",
    unpublishedTotal: status.rejoin.unpublishedTotal,
  });
  return reported;
}

// biome-ignore lint/suspicious/noExplicitAny: /status is the node's JSON document, checked field by field.
type Status = any;

async function waitForFenced(
  c: TestCluster,
  done: (st: Status) => boolean,
  output: () => string,
): Promise<Status> {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const st = await c.status("a").catch(() => null);
    if (st && done(st)) return st;
    if (Date.now() > deadline) throw new Error(`node a: ${JSON.stringify(st)}\n${output().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 300));
  }
}

/** One sample of node a's /metrics with these labels (among others), NaN when absent. */
async function metric(c: TestCluster, name: string, labels: Record<string, string> = {}): Promise<number> {
  const text = await (await fetch(`${c.apiUrl("a")}/metrics`)).text();
  const line = text
    .split("\n")
    .find(
      (l) =>
        (l.startsWith(`${name} `) || l.startsWith(`${name}{`)) &&
        Object.entries(labels).every(([k, v]) => l.includes(`${k}="${v}"`)),
    );
  return line ? Number(line.split(" ").at(-1)) : Number.NaN;
}

/** A client's write on the rejoined old primary is refused; it ends equal to the new primary and follows it. */
async function expectExactStandby(s: Scenario, marker: number): Promise<void> {
  const a = s.db.get("a")?.url as string;
  const b = s.db.get("b")?.url as string;
  await expect(runSql(a, "INSERT INTO acks VALUES (-100, 0)")).rejects.toMatchObject({ code: "25006" });
  await runSql(b, `INSERT INTO acks VALUES (${marker}, 0)`);
  const deadline = Date.now() + 60_000;
  while ((await runSql(a, `SELECT 1 FROM acks WHERE id = ${marker}`)).rowCount !== 1) {
    if (Date.now() > deadline)
      throw new Error(`a did not follow b:\n${s.cluster.processes.get("a")?.output().slice(-3000)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  expect(describeDifferences(await compareTables(b, a, ["public.acks"]))).toEqual([]);
}

describe("diffrelay failover --cluster after kill -9 of the primary, then the old primary's node rejoins", () => {
  it("with zero-loss mode on: every acknowledged id is on the new primary; the old primary rejoins with no acknowledged commit lost", async () => {
    const s = await startScenario("fozl", ["b", "c"], true);
    const { cluster: c } = s;
    const writers = writeUntilDead(s.db.get("a")?.url as string, CLIENTS);
    await new Promise((r) => setTimeout(r, 4000));
    await s.primary.kill();
    const acknowledged = await writers;
    // Each commit waits for Kafka: a few dozen per second per client on a shared 2-core machine.
    expect(acknowledged.length).toBeGreaterThan(20);
    await c.waitFor("a", "/healthz", 503);

    s.step("primary killed");
    const run = await failover(c);
    s.step("failover done");
    expect(run.code, run.output).toBe(0);
    expect(run.report).toMatchObject({
      outcome: "promoted",
      cluster: c.name,
      fromEpoch: 0,
      epoch: 1,
      newPrimary: "b",
      following: ["c"],
      oldPrimary: { name: "a", reachable: false, lastKnown: { zeroLoss: "required" } },
      mayBeLost: { acknowledgedCommits: "none", slotLagBytes: 0 },
    });

    expect(await c.probe("b", "/primary")).toBe(200);
    const b = s.db.get("b")?.url as string;
    const onB = await ids(b);
    const missing = acknowledged.filter((id) => !onB.has(id));
    expect(missing).toEqual([]);

    // The new primary takes writes and c follows it.
    await runSql(b, "INSERT INTO acks VALUES (-1, 0)");
    const deadline = Date.now() + 60_000;
    while ((await runSql(s.db.get("c")?.url as string, "SELECT 1 FROM acks WHERE id = -1")).rowCount !== 1) {
      if (Date.now() > deadline)
        throw new Error(`c did not follow b:\n${c.processes.get("c")?.output().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(
      describeDifferences(await compareTables(b, s.db.get("c")?.url as string, ["public.acks"])),
    ).toEqual([]);

    const reported = await restartAndRejoin(s, ["--zero-loss"]);
    // The fence reset what the capture had set: commits on the old server no longer wait for it.
    const names = await runSql(s.primary.url, "SHOW synchronous_standby_names");
    expect(names.rows[0]?.synchronous_standby_names).toBe("");
    // Only commits in flight at the kill can be on a alone: in its WAL, never acknowledged to their client.
    const acked = new Set(acknowledged);
    expect(reported.filter((id) => acked.has(id))).toEqual([]);
    expect(reported.length).toBeLessThanOrEqual(CLIENTS);
    for (const id of reported) expect(onB.has(id), `reported id ${id} is on b`).toBe(false);
    console.log(
      `cluster failover, zero-loss on: ${acknowledged.length} commits acknowledged, ${missing.length} missing on the new primary; the old primary's rejoin reported ${reported.length} unacknowledged commit(s) in flight at the kill`,
    );
    await expectExactStandby(s, -2);
    s.step("old primary equal to the new one and following it");
    // Its applier's consumer group is named after the standby (a): the next scenario's a must not meet it.
    await c.stopAll();
  }, 360_000);

  it("with zero-loss mode off: failover exits 8, and the acknowledged ids missing on the new primary are exactly those the rejoin reports", async () => {
    const s = await startScenario("fooff", ["b"], false);
    const { cluster: c } = s;
    const nodeA = c.processes.get("a");
    if (!nodeA) throw new Error("node a is not running");
    const writers = writeUntilDead(s.db.get("a")?.url as string, CLIENTS);
    await new Promise((r) => setTimeout(r, 2000));
    // The capture stops reading: what commits from now on is acknowledged to clients and never reaches Kafka.
    nodeA.kill("SIGSTOP");
    await new Promise((r) => setTimeout(r, 1500));
    await s.primary.kill();
    const acknowledged = await writers;
    expect(acknowledged.length).toBeGreaterThan(50);

    s.step("primary killed");
    const run = await failover(c);
    s.step("failover done");
    expect(run.code, run.output).toBe(8);
    expect(run.report).toMatchObject({
      outcome: "promoted-possible-loss",
      epoch: 1,
      newPrimary: "b",
      oldPrimary: { name: "a", reachable: false },
      mayBeLost: { acknowledgedCommits: "possible" },
    });
    nodeA.kill("SIGKILL");
    await nodeA.exited;

    const onB = await ids(s.db.get("b")?.url as string);
    const missing = acknowledged.filter((id) => !onB.has(id));
    expect(missing.length, "the SIGSTOP left no acknowledged commit unpublished").toBeGreaterThan(0);

    const reported = await restartAndRejoin(s, [], async () => {
      // Automatic rejoin off: the node fences the database and waits for an operator.
      const manual = c.start("a", ["--manual-rejoin"]);
      const fenced = await waitForFenced(c, (st) => st.nodeRole === "fenced", manual.output);
      expect(fenced.rejoin).toBeNull();
      expect(fenced.fenced).toMatch(/automatic rejoin is off \(--manual-rejoin\): run `diffrelay rejoin`/);
      expect(await c.probe("a", "/healthz")).toBe(503);
      await expect(runSql(s.db.get("a")?.url as string, "SELECT 1")).rejects.toMatchObject({ code: "55000" });
      expect(await metric(c, "diffrelay_node_fenced")).toBe(1);
      await stopProcess(manual);
      // A rejoin that fails (b's server refuses the password) leaves it fenced, says why, and is not retried.
      const failing = c.start("a", ["--peer-password=wrong"]);
      const failed = await waitForFenced(c, (st) => st.rejoin?.state === "failed", failing.output);
      expect(failed.rejoin.error).toMatch(/password authentication failed/);
      expect(failed.fenced).toMatch(/automatic rejoin, from b's database .* failed: .*restart the node/);
      await new Promise((r) => setTimeout(r, 6000));
      expect(await metric(c, "diffrelay_node_rejoins_total", { outcome: "failed" })).toBe(1);
      expect(await c.probe("a", "/healthz")).toBe(503);
      await expect(runSql(s.db.get("a")?.url as string, "SELECT 1")).rejects.toMatchObject({ code: "55000" });
      await stopProcess(failing);
      s.step("manual and failed rejoin checked");
    });
    const reportedSet = new Set(reported);
    // Every acknowledged id the new primary lacks is reported, and every reported one is missing there.
    expect(missing.filter((id) => !reportedSet.has(id))).toEqual([]);
    for (const id of reported) expect(onB.has(id), `reported id ${id} is on b`).toBe(false);
    // The reported ones beyond those: commits in flight at the kill, on a but never acknowledged.
    const acked = new Set(acknowledged);
    expect(reported.filter((id) => !acked.has(id)).length).toBeLessThanOrEqual(CLIENTS);
    console.log(
      `cluster failover, zero-loss off: ${acknowledged.length} commits acknowledged, ${missing.length} missing on the new primary, ${reported.length} reported by the old primary's rejoin (${reported.length - missing.length} in flight at the kill)`,
    );
    await expectExactStandby(s, -2);
    // Restarted, the node is a standby at once and its /status still tells what the rejoin found.
    const before = await c.status("a");
    await stopProcess(c.processes.get("a") as NonNullable<ReturnType<typeof c.processes.get>>);
    c.start("a");
    await c.waitFor("a", "/replica", 200);
    expect((await c.status("a")).rejoin).toMatchObject({
      state: "rejoined",
      reportId: before.rejoin.reportId,
      unpublishedTotal: reported.length,
    });
    s.step("old primary equal to the new one and following it");
  }, 360_000);
});
