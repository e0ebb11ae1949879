// Nodes that are down while the cluster moves twice (a failover a→b, then a switchover b→c) come back on
// their own: the old primary a undoes what it committed that never reached Kafka and follows epoch 1's
// topic to its drained end, then epoch 2's; the standby d applies the rest of epoch 0's topic, all of
// epoch 1's, then follows epoch 2's. Every node ends equal to the primary.
import kafkajs from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clusterDataTopics } from "../../src/kafka/topic-names.js";
import { spawnDiffrelay } from "../support/child-process.js";
import { HA_LOAD_DDL, HA_LOAD_TABLE, TestCluster } from "../support/cluster-nodes.js";
import { exitWithin } from "../support/replication-pipeline.js";
import {
  createTestDatabase,
  runSql,
  type TestDatabase,
  testServices,
  uniqueName,
} from "../support/services.js";
import { compareTables, describeDifferences } from "../support/table-compare.js";

const databases: TestDatabase[] = [];
let cluster: TestCluster;

beforeAll(async () => {
  const services = testServices();
  const servers = [services.sourceUrl, services.standbyUrls[0], services.standbyUrls[1], services.sourceUrl];
  for (const server of servers) {
    const db = await createTestDatabase(server as string, "chain");
    await runSql(db.url, HA_LOAD_DDL);
    databases.push(db);
  }
  cluster = await TestCluster.create({
    name: uniqueName("chain").replace(/_/g, "-"),
    databases: databases.map((db, i) => ({ name: ["a", "b", "c", "d"][i] as string, url: db.url })),
    brokers: services.kafkaBrokers,
    topicPrefix: "chaintest",
    tables: [HA_LOAD_TABLE],
  });
}, 120_000);

afterAll(async () => {
  await cluster?.stopAll();
  for (const db of databases) await db.drop().catch(() => undefined);
});

const url = (node: string) => cluster.spec(node).databaseUrl;

/** Rows of one writer, one transaction each, on the primary's database. */
async function write(node: string, writer: number, count: number): Promise<void> {
  for (let seq = 1; seq <= count; seq++)
    await runSql(url(node), "INSERT INTO ha_writes (writer, seq) VALUES ($1, $2)", [writer, seq]);
}

/** A marker row written on the primary reaches each of `nodes`. */
async function caughtUp(primary: string, nodes: string[], timeoutMs = 60_000): Promise<void> {
  const marker = await runSql<{ id: string }>(
    url(primary),
    "INSERT INTO ha_writes (writer, seq) VALUES (0, (SELECT coalesce(max(seq), 0) + 1 FROM ha_writes WHERE writer = 0)) RETURNING id::text",
  );
  const id = marker.rows[0]?.id as string;
  for (const n of nodes) {
    const deadline = Date.now() + timeoutMs;
    while (!(await runSql(url(n), "SELECT 1 FROM ha_writes WHERE id = $1", [id])).rowCount) {
      if (Date.now() > deadline) {
        throw new Error(
          `${n} did not get the marker ${id} from ${primary}:\n${cluster.processes.get(n)?.output().slice(-4000)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

async function command(args: string[], timeoutMs: number) {
  const p = spawnDiffrelay([...args, ...cluster.clusterArgs(), "--json"]);
  const exit = await exitWithin(p, timeoutMs);
  return { code: exit.code, output: p.output() };
}

describe("rejoin across two role changes", () => {
  it("an old primary and a standby, both down while the cluster moved a→b→c, follow the chain of epochs and end equal", {
    timeout: 480_000,
  }, async () => {
    cluster.start("a", ["--initial-primary", "a"]);
    await cluster.waitFor("a", "/primary", 200);
    const topic0 = clusterDataTopics({ topicPrefix: cluster.topicPrefix }, cluster.name, 0).data;
    for (const name of ["b", "c", "d"]) {
      const seed = spawnDiffrelay([
        "seed",
        "--source-url",
        url("a"),
        "--standby-url",
        url(name),
        "--standby-name",
        name,
        "--brokers",
        testServices().kafkaBrokers.join(","),
        "--topic",
        topic0,
      ]);
      expect((await exitWithin(seed, 60_000)).code, seed.output()).toBe(0);
      cluster.start(name);
    }
    for (const name of ["b", "c", "d"]) await cluster.waitFor(name, "/replica?lag=10000", 200);
    await write("a", 1, 20);
    await caughtUp("a", ["b", "c", "d"]);

    // d goes down; epoch 0 goes on without it.
    const d = cluster.processes.get("d");
    d?.kill("SIGKILL");
    await d?.exited;
    await write("a", 2, 20);
    await caughtUp("a", ["b", "c"]);
    // a goes down with its capture: what it commits now reaches no other node.
    const a = cluster.processes.get("a");
    a?.kill("SIGKILL");
    await a?.exited;
    await runSql(url("a"), "INSERT INTO ha_writes (writer, seq) SELECT -9, g FROM generate_series(1, 5) g");
    await runSql(url("a"), "INSERT INTO ha_writes (writer, seq) VALUES (-9, 6)");
    // Until their last reports are old, a and d would count as members to wait for.
    await new Promise((r) => setTimeout(r, 21_000));

    const failover = await command(["failover", "--to", "b"], 150_000);
    expect([0, 8], failover.output).toContain(failover.code);
    await cluster.waitFor("b", "/primary", 200);
    await cluster.waitFor("c", "/replica?lag=10000", 200);
    await write("b", 3, 20);
    await caughtUp("b", ["c"]);
    const switchover = await command(["switchover", "--to", "c", "--timeout", "30000"], 120_000);
    expect(switchover.code, switchover.output).toBe(0);
    await cluster.waitFor("c", "/primary", 200);
    await write("c", 4, 20);

    // Both come back with their own command lines (a without --initial-primary: that is defect 1's).
    // a's rewind reads c's database, on another server: with that server's password.
    cluster.start("a", [`--peer-password=${decodeURIComponent(new URL(url("c")).password)}`]);
    cluster.start("d");
    await cluster.waitFor("a", "/replica?lag=30000", 200, 180_000);
    await cluster.waitFor("d", "/replica?lag=30000", 200, 180_000);
    await write("c", 5, 10);
    await caughtUp("c", ["a", "b", "d"]);
    for (const n of ["a", "b", "d"]) {
      expect(describeDifferences(await compareTables(url("c"), url(n), [HA_LOAD_TABLE])), n).toEqual([]);
    }
    expect((await runSql(url("a"), "SELECT 1 FROM ha_writes WHERE writer = -9")).rowCount).toBe(0);
    for (const writer of [1, 2, 3, 4, 5]) {
      const rows = await runSql(url("d"), "SELECT 1 FROM ha_writes WHERE writer = $1", [writer]);
      expect(rows.rowCount, `writer ${writer} on d`).toBe(writer === 5 ? 10 : 20);
    }

    const status = await cluster.status("a");
    expect(status.rejoin).toMatchObject({ state: "rejoined", method: "rewind", unpublishedTotal: 2 });
    expect(
      status.rejoin.unpublished.flatMap((t: { changes: unknown[] }) => t.changes).length,
      JSON.stringify(status.rejoin),
    ).toBe(6);
    expect(cluster.processes.get("a")?.output()).toMatch(/applied .*\.e1 to its drained end/);
    expect(cluster.processes.get("d")?.output()).toMatch(/applied .*chaintest\.[^ ]+ to its drained end/);
  });

  it("`diffrelay rejoin --cluster` by hand: the old primary c, down while the cluster moved c→a→b, follows the chain and its node then starts as a standby", {
    timeout: 300_000,
  }, async () => {
    const c = cluster.processes.get("c");
    c?.kill("SIGKILL");
    await c?.exited;
    await runSql(url("c"), "INSERT INTO ha_writes (writer, seq) SELECT -8, g FROM generate_series(1, 3) g");
    await new Promise((r) => setTimeout(r, 21_000));
    const failover = await command(["failover", "--to", "a"], 150_000);
    expect([0, 8], failover.output).toContain(failover.code);
    await cluster.waitFor("a", "/primary", 200);
    await write("a", 6, 10);
    const switchover = await command(["switchover", "--to", "b", "--timeout", "30000"], 120_000);
    expect(switchover.code, switchover.output).toBe(0);
    await cluster.waitFor("b", "/primary", 200);
    await write("b", 7, 10);

    const rejoin = spawnDiffrelay([
      "rejoin",
      ...cluster.clusterArgs(),
      "--standby-url",
      url("c"),
      "--standby-name",
      "c",
      "--source-url",
      url("b"),
      "--json",
    ]);
    expect((await exitWithin(rejoin, 120_000)).code, rejoin.output()).toBe(0);
    const report = JSON.parse(
      rejoin
        .output()
        .split("\n")
        .find((l) => l.startsWith('{"standbyName"')) as string,
    );
    expect(report).toMatchObject({ method: "rewind", rowsRewound: 3, epoch: 4 });
    expect(report.followed.map((f: { epoch: number }) => f.epoch)).toEqual([3]);
    expect(report.unpublished.map((t: { changes: unknown[] }) => t.changes.length)).toEqual([3]);

    cluster.start("c");
    await cluster.waitFor("c", "/replica?lag=30000", 200, 120_000);
    await write("b", 8, 10);
    await caughtUp("b", ["a", "c", "d"]);
    for (const n of ["a", "c", "d"]) {
      expect(describeDifferences(await compareTables(url("b"), url(n), [HA_LOAD_TABLE])), n).toEqual([]);
    }
    expect((await runSql(url("c"), "SELECT 1 FROM ha_writes WHERE writer = -8")).rowCount).toBe(0);
  });

  it("a standby whose missed epochs Kafka's retention no longer holds is re-seeded from the primary, saying why", {
    timeout: 300_000,
  }, async () => {
    const d = cluster.processes.get("d");
    d?.kill("SIGKILL");
    await d?.exited;
    await write("b", 9, 10);
    await new Promise((r) => setTimeout(r, 21_000));
    for (const to of ["a", "b"]) {
      const switchover = await command(["switchover", "--to", to, "--timeout", "30000"], 120_000);
      expect(switchover.code, switchover.output).toBe(0);
      await cluster.waitFor(to, "/primary", 200);
      await write(to, to === "a" ? 10 : 11, 10);
    }
    // Retention takes all of epoch 4's topic, of which d misses the end.
    const epoch4 = clusterDataTopics({ topicPrefix: cluster.topicPrefix }, cluster.name, 4).data;
    const admin = new kafkajs.Kafka({
      brokers: testServices().kafkaBrokers,
      logLevel: kafkajs.logLevel.NOTHING,
    }).admin();
    await admin.connect();
    try {
      const high = (await admin.fetchTopicOffsets(epoch4))[0]?.high as string;
      await admin.deleteTopicRecords({ topic: epoch4, partitions: [{ partition: 0, offset: high }] });
    } finally {
      await admin.disconnect();
    }

    const restarted = cluster.start("d", [
      `--peer-password=${decodeURIComponent(new URL(url("b")).password)}`,
    ]);
    await cluster.waitFor("d", "/replica?lag=30000", 200, 120_000);
    expect(restarted.output()).toMatch(
      new RegExp(
        `RE-SEEDED from b .*because: Kafka's retention deleted ${epoch4.replaceAll(".", "\\.")} \\(epoch 4\\) up to offset`,
      ),
    );
    await write("b", 12, 10);
    await caughtUp("b", ["a", "c", "d"]);
    for (const n of ["a", "c", "d"]) {
      expect(describeDifferences(await compareTables(url("b"), url(n), [HA_LOAD_TABLE])), n).toEqual([]);
    }
  });
});
