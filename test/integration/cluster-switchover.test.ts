import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { STALLED_CHANGE_MS } from "../../operations/roles/index.js";
import { partitionOffsets } from "../../src/kafka/topic-admin.js";
import { clusterDataTopics } from "../../src/kafka/topic-names.js";
import { spawnDiffrelay } from "../support/child-process.js";
import {
  commitSynchronously,
  HA_LOAD_DDL,
  HA_LOAD_TABLE,
  PrimaryFollowingLoad,
  TestCluster,
} from "../support/cluster-nodes.js";
import { exitWithin, stopProcess } from "../support/replication-pipeline.js";
import {
  createTestDatabase,
  runSql,
  type TestDatabase,
  testServices,
  uniqueName,
  withClient,
} from "../support/services.js";
import { compareTables, describeDifferences } from "../support/table-compare.js";

const databases: TestDatabase[] = [];
let cluster: TestCluster;
const windows: number[] = [];

beforeAll(async () => {
  const services = testServices();
  const servers = [services.sourceUrl, ...services.standbyUrls.slice(0, 2)];
  for (const server of servers) {
    const db = await createTestDatabase(server, "ha");
    await commitSynchronously(db);
    await runSql(db.url, HA_LOAD_DDL);
    databases.push(db);
  }
  cluster = await TestCluster.create({
    name: uniqueName("ring").replace(/_/g, "-"),
    databases: databases.map((db, i) => ({ name: ["a", "b", "c"][i] as string, url: db.url })),
    brokers: services.kafkaBrokers,
    topicPrefix: "hatest",
    tables: [HA_LOAD_TABLE],
  });
}, 120_000);

afterAll(async () => {
  await cluster?.stopAll();
  for (const db of databases) await db.drop().catch(() => undefined);
});

const switchover = (to: string) => cluster.switchover(to);

async function expectRoles(primary: string) {
  for (const n of cluster.nodes) {
    if (n.name === primary) {
      expect(await cluster.probe(n.name, "/primary"), `${n.name} /primary`).toBe(200);
      expect(await cluster.probe(n.name, "/replica"), `${n.name} /replica`).toBe(503);
    } else {
      await cluster.waitFor(n.name, "/replica?lag=10000", 200, 30_000);
      expect(await cluster.probe(n.name, "/primary"), `${n.name} /primary`).toBe(503);
    }
  }
}

/** Every acknowledged row on every node exactly once, nothing else but resolved ambiguous ones. */
async function expectNothingLostOrDoubled(load: PrimaryFollowingLoad, primary: string) {
  const primaryUrl = cluster.spec(primary).databaseUrl;
  const rows = await runSql<{ writer: number; seq: number }>(primaryUrl, "SELECT writer, seq FROM ha_writes");
  const present = new Set(rows.rows.map((r) => `${r.writer}/${r.seq}`));
  const missing = load.acknowledged.filter((a) => !present.has(`${a.writer}/${a.seq}`));
  expect(missing, "acknowledged rows missing on the primary").toEqual([]);
  const ambiguousCommitted = load.ambiguous.filter((a) => present.has(`${a.writer}/${a.seq}`)).length;
  expect(rows.rowCount).toBe(load.acknowledged.length + ambiguousCommitted);
  // Serial keys: the ids the clients saw are distinct (a collision would also have failed an INSERT).
  expect(new Set(load.acknowledged.map((a) => a.id)).size).toBe(load.acknowledged.length);
  expect(load.errors).toEqual([]);
  // Caught up: a marker row written last reaches every standby, then every table is equal.
  const marker = await runSql<{ id: string }>(
    primaryUrl,
    "INSERT INTO ha_writes (writer, seq) VALUES (0, (SELECT coalesce(max(seq), 0) + 1 FROM ha_writes WHERE writer = 0)) RETURNING id::text",
  );
  const markerId = marker.rows[0]?.id as string;
  for (const n of cluster.nodes.filter((x) => x.name !== primary)) {
    const deadline = Date.now() + 60_000;
    for (;;) {
      const seen = await runSql(n.databaseUrl, "SELECT 1 FROM ha_writes WHERE id = $1", [markerId]);
      if (seen.rowCount) break;
      if (Date.now() > deadline) throw new Error(`${n.name} did not catch up with the marker ${markerId}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(describeDifferences(await compareTables(primaryUrl, n.databaseUrl, [HA_LOAD_TABLE]))).toEqual([]);
  }
}

describe("HA cluster of diffrelay nodes", () => {
  it("bootstraps with a first primary; seeded standbys follow it; the API routes like Patroni's", async () => {
    const a = cluster.start("a", ["--initial-primary", "a"]);
    await cluster.waitFor("a", "/primary", 200);
    const topic = clusterDataTopics({ topicPrefix: cluster.topicPrefix }, cluster.name, 0).data;
    for (const name of ["b", "c"]) {
      const seed = spawnDiffrelay([
        "seed",
        "--source-url",
        cluster.spec("a").databaseUrl,
        "--standby-url",
        cluster.spec(name).databaseUrl,
        "--standby-name",
        name,
        "--brokers",
        testServices().kafkaBrokers.join(","),
        "--topic",
        topic,
      ]);
      expect((await exitWithin(seed, 60_000)).code, seed.output()).toBe(0);
    }
    cluster.start("b");
    cluster.start("c");
    await expectRoles("a");
    // A standby refuses client writes.
    await expect(
      runSql(cluster.spec("b").databaseUrl, "INSERT INTO ha_writes (writer, seq) VALUES (-1, 1)"),
    ).rejects.toThrow(/read-only transaction/);
    expect(a.output()).toMatch(/primary: capturing/);
  });

  it("switches over around the ring a→b→c→a under load: nothing lost or doubled, every node equal", {
    timeout: 300_000,
  }, async () => {
    const load = new PrimaryFollowingLoad(cluster, 2);
    load.start();
    try {
      for (const to of ["b", "c", "a"]) {
        await new Promise((r) => setTimeout(r, 1500));
        const before = load.acknowledged.length;
        const { exit, output } = await switchover(to);
        expect(exit.code, output).toBe(0);
        const report = JSON.parse(output.trim().split("\n").at(-1) as string);
        expect(report.newPrimary).toBe(to);
        windows.push(report.writeUnavailableMs);
        await expectRoles(to);
        // Writes go on at the new primary.
        const deadline = Date.now() + 20_000;
        while (load.acknowledged.length <= before + 10 && Date.now() < deadline)
          await new Promise((r) => setTimeout(r, 100));
        expect(load.acknowledged.length).toBeGreaterThan(before + 10);
      }
    } finally {
      await load.stop();
    }
    console.log(
      `write-unavailable windows (ms): ${windows.join(", ")}; ${load.acknowledged.length} rows acknowledged`,
    );
    await expectNothingLostOrDoubled(load, "a");
    // Recorded, not timed: the figure depends on the machine's load (the goal, under 5 s, is for an idle stack).
    for (const w of windows) expect(w).toBeGreaterThan(0);
  });

  it("a node restarted with its own command line (--initial-primary a) takes its role again; after a switchover, a standby of the new primary, whatever DIFFRELAY_EPOCH says", {
    timeout: 300_000,
  }, async () => {
    // The primary restarted as a supervisor would: the cluster state is on the topic, so no bootstrap.
    const restarted = await cluster.restart("a");
    await cluster.waitFor("a", "/primary", 200, 60_000);
    expect(restarted.output()).not.toMatch(/cannot be claimed/);
    await expectRoles("a");

    const { exit, output } = await switchover("b");
    expect(exit.code, output).toBe(0);
    await expectRoles("b");
    const claimsBefore = (await cluster.view()).highestClaim;
    // The same line again: node a must follow b, never claim a state of its own.
    const plain = await cluster.restart("a");
    await cluster.waitFor("a", "/replica?lag=10000", 200, 60_000);
    expect(await cluster.probe("a", "/primary")).toBe(503);
    // With an epoch in the environment (shared with capture and apply): still a standby of b.
    await stopProcess(plain);
    const epochSet = cluster.start("a", ["--initial-primary", "a"], { DIFFRELAY_EPOCH: "7" });
    await cluster.waitFor("a", "/replica?lag=10000", 200, 60_000);
    expect(await cluster.probe("a", "/primary")).toBe(503);
    expect(await cluster.probe("b", "/primary")).toBe(200);
    const view = await cluster.view();
    expect(view.highestClaim).toBe(claimsBefore);
    expect(view.state).toMatchObject({ primary: "b", phase: "stable" });
    expect(plain.output() + epochSet.output()).not.toMatch(/cannot be claimed|bootstrapped/);

    const back = await switchover("a");
    expect(back.exit.code, back.output).toBe(0);
    await expectRoles("a");
  });

  it("of two concurrent switchovers at most one succeeds; the loser exits 9 or 3 and changes nothing", async () => {
    const [toB, toC] = await Promise.all([switchover("b"), switchover("c")]);
    const won = [toB, toC].filter((r) => r.exit.code === 0);
    const lost = [toB, toC].filter((r) => r.exit.code !== 0);
    expect(won.length).toBeLessThanOrEqual(1);
    for (const l of lost) {
      expect([3, 9], l.output).toContain(l.exit.code);
      expect(l.output).toMatch(/nothing was changed/);
    }
    const winner = won.length === 1 ? (toB.exit.code === 0 ? "b" : "c") : "a";
    await expectRoles(winner);
  });

  it("a switchover whose old primary never fences exits 10 naming failover; failover out of it promotes the target and the other standby follows", async () => {
    const primary = (await cluster.primary())?.name as string;
    const [target, other] = cluster.nodes.filter((n) => n.name !== primary).map((n) => n.name) as [
      string,
      string,
    ];
    // The primary's node freezes (its capture with it): it can read no state and fence nothing.
    const frozen = cluster.processes.get(primary);
    frozen?.kill("SIGSTOP");
    try {
      const stalled = spawnDiffrelay([
        "switchover",
        ...cluster.clusterArgs(),
        "--to",
        target,
        "--timeout",
        "5000",
      ]);
      const exit = await exitWithin(stalled, 60_000);
      expect(exit.code, stalled.output()).toBe(10);
      expect(stalled.output()).toMatch(
        /did not fence itself within 5000 ms.*phase fencing.*diffrelay failover --cluster/,
      );
      // Mid-change, the standbys go on applying the old primary's topic and serving reads.
      for (const n of [target, other]) {
        expect(await cluster.probe(n, "/healthz"), n).toBe(200);
        expect(await cluster.probe(n, "/replica?lag=60000"), n).toBe(200);
      }

      const failover = spawnDiffrelay(["failover", ...cluster.clusterArgs(), "--to", target, "--json"]);
      const done = await exitWithin(failover, 120_000);
      expect([0, 8], failover.output()).toContain(done.code);
      const report = JSON.parse(
        failover
          .output()
          .split("\n")
          .find((l) => l.startsWith('{"outcome"')) as string,
      );
      expect(report).toMatchObject({ oldPrimary: { name: primary }, newPrimary: target, following: [other] });
      expect(report.epoch).toBe(report.fromEpoch + 2);
      await cluster.waitFor(target, "/primary", 200);
      await cluster.waitFor(other, "/replica?lag=10000", 200);
      const row = await runSql<{ id: string }>(
        cluster.spec(target).databaseUrl,
        "INSERT INTO ha_writes (writer, seq) VALUES (-3, 1) RETURNING id::text",
      );
      const id = row.rows[0]?.id as string;
      const deadline = Date.now() + 30_000;
      while (
        !(await runSql(cluster.spec(other).databaseUrl, "SELECT 1 FROM ha_writes WHERE id = $1", [id]))
          .rowCount
      ) {
        if (Date.now() > deadline) throw new Error(`${other} did not get row ${id} from ${target}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(
        describeDifferences(
          await compareTables(cluster.spec(target).databaseUrl, cluster.spec(other).databaseUrl, [
            HA_LOAD_TABLE,
          ]),
        ),
      ).toEqual([]);
    } finally {
      frozen?.kill("SIGCONT");
    }
    // Thawed, the old primary's node finds the cluster two epochs on and fences its database (then
    // rejoins it as a standby). /primary answers 503 as soon as the node reads the new epoch, a moment
    // before its fence holds: what is checked is the database once the node has left the primary role.
    await cluster.waitFor(primary, "/primary", 503, 60_000);
    const deadline = Date.now() + 60_000;
    while (!["fenced", "standby"].includes((await cluster.status(primary)).nodeRole)) {
      if (Date.now() > deadline)
        throw new Error(`${primary} did not fence:\n${frozen?.output().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    await expect(
      withClient(cluster.spec(primary).databaseUrl, (c) =>
        c.query("INSERT INTO ha_writes (writer, seq) VALUES (-4, 1)"),
      ),
    ).rejects.toThrow(/not currently accepting connections|read-only/);
  });

  it("a primary left on an older epoch fences itself and never accepts a write; the new primary finishes the change its failover left at promoting", async () => {
    const primary = (await cluster.primary())?.name as string;
    let next = "";
    for (const n of cluster.nodes.filter((x) => x.name !== primary))
      if (!next && (await cluster.probe(n.name, "/replica")) === 200) next = n.name;
    expect(next, "a standby to move the cluster to").not.toBe("");
    const killed = cluster.processes.get(primary);
    killed?.kill("SIGKILL");
    await killed?.exited;
    // The cluster moves on without it (as a failover elsewhere would): a new epoch, primary `next`.
    const { store, kafka } = cluster.store();
    try {
      const view = await store.read();
      const state = view.state as NonNullable<typeof view.state>;
      const admin = kafka.admin();
      await admin.connect();
      const end = (await partitionOffsets(admin, state.topics.data)).high;
      await admin.disconnect();
      const epoch = view.highestClaim + 1;
      await store.claimEpoch(epoch, "test failover");
      await store.publishState({
        ...state,
        epoch,
        primary: next,
        phase: "promoting",
        topics: clusterDataTopics({ topicPrefix: cluster.topicPrefix }, cluster.name, epoch),
        previous: {
          epoch: state.epoch,
          primary: state.primary,
          topics: state.topics,
          drainedEndOffset: end.toString(),
        },
        writtenBy: "test",
        writtenAt: new Date().toISOString(),
      });
    } finally {
      await store.close();
    }
    await cluster.waitFor(next, "/primary", 200);
    // Its database still accepts writes until its node comes back...
    await runSql(cluster.spec(primary).databaseUrl, "SELECT 1");
    // Automatic rejoin off: what is checked here is the fenced state itself, which automatic rejoin
    // leaves at once (test/fault/failover-cluster-kill-primary.test.ts rejoins a stale primary).
    const stale = cluster.start(primary, ["--manual-rejoin"]);
    await stale.waitForOutput(/fenced \(read-only, accepts no connections\)/, 60_000);
    expect(await cluster.probe(primary, "/primary")).toBe(503);
    expect(await cluster.probe(primary, "/healthz")).toBe(503);
    const status = await cluster.status(primary);
    expect(status.nodeRole).toBe("fenced");
    expect(status.fenced).toMatch(/diffrelay rejoin/);
    await expect(
      withClient(cluster.spec(primary).databaseUrl, (c) =>
        c.query("INSERT INTO ha_writes (writer, seq) VALUES (-2, 1)"),
      ),
    ).rejects.toThrow(/not currently accepting connections|read-only/);
    // The "failover" above died before marking its change stable: the new primary, serving, finishes it
    // once it has served for STALLED_CHANGE_MS (no election supersedes a change whose primary serves).
    const deadline = Date.now() + STALLED_CHANGE_MS + 30_000;
    let phase: unknown = null;
    while (Date.now() < deadline && phase !== "stable") {
      phase = (await cluster.status(next)).phase;
      if (phase !== "stable") await new Promise((r) => setTimeout(r, 500));
    }
    expect(phase, `the phase of the change to ${next}`).toBe("stable");
    expect(await cluster.probe(next, "/primary")).toBe(200);
  }, 180_000);
});
