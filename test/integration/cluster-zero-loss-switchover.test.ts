// Switchovers of zero-loss nodes, synchronous_commit = on on every server (as production runs): the old
// primary's server must stop waiting for the capture it stopped, or its own commits hang in SyncRep.
// Private servers: zero-loss mode sets synchronous_standby_names, a server-wide setting.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clusterDataTopics } from "../../src/kafka/topic-names.js";
import { spawnDiffrelay } from "../support/child-process.js";
import { HA_LOAD_DDL, HA_LOAD_TABLE, PrimaryFollowingLoad, TestCluster } from "../support/cluster-nodes.js";
import { type PrivatePostgres, startPrivatePostgres } from "../support/private-postgres.js";
import { exitWithin } from "../support/replication-pipeline.js";
import {
  createTestDatabase,
  runSql,
  type TestDatabase,
  testServices,
  uniqueName,
} from "../support/services.js";
import { compareTables, describeDifferences } from "../support/table-compare.js";

const servers: PrivatePostgres[] = [];
const databases: TestDatabase[] = [];
let cluster: TestCluster;

beforeAll(async () => {
  for (const name of ["zl-a", "zl-b"]) {
    const server = await startPrivatePostgres(name);
    servers.push(server);
    await server.configure({ synchronous_commit: "on" });
    const db = await createTestDatabase(server.url, "zl");
    await runSql(db.url, HA_LOAD_DDL);
    databases.push(db);
  }
  cluster = await TestCluster.create({
    name: uniqueName("zl").replace(/_/g, "-"),
    databases: databases.map((db, i) => ({ name: ["a", "b"][i] as string, url: db.url })),
    brokers: testServices().kafkaBrokers,
    topicPrefix: "zltest",
    tables: [HA_LOAD_TABLE],
  });
}, 180_000);

afterAll(async () => {
  await cluster?.stopAll();
  // With zero-loss on and no capture, dropping a database would wait for the capture: the servers go first.
  for (const server of servers) await server.destroy();
});

const switchover = (to: string) => cluster.switchover(to);

async function synchronousStandbyNames(node: string): Promise<string> {
  const { rows } = await runSql<{ names: string }>(
    cluster.spec(node).databaseUrl,
    "SELECT current_setting('synchronous_standby_names') AS names",
  );
  return rows[0]?.names ?? "";
}

describe("zero-loss switchover", () => {
  it("switches over a→b→a with zero-loss nodes: the old primary follows at once, every acknowledged row on both", {
    timeout: 300_000,
  }, async () => {
    cluster.start("a", ["--initial-primary", "a", "--zero-loss"]);
    await cluster.waitFor("a", "/primary", 200);
    const seed = spawnDiffrelay([
      "seed",
      "--source-url",
      cluster.spec("a").databaseUrl,
      "--standby-url",
      cluster.spec("b").databaseUrl,
      "--standby-name",
      "b",
      "--brokers",
      testServices().kafkaBrokers.join(","),
      "--topic",
      clusterDataTopics({ topicPrefix: cluster.topicPrefix }, cluster.name, 0).data,
    ]);
    expect((await exitWithin(seed, 60_000)).code, seed.output()).toBe(0);
    cluster.start("b", ["--zero-loss"]);
    await cluster.waitFor("b", "/replica", 200);
    expect(await synchronousStandbyNames("a")).not.toBe("");

    const load = new PrimaryFollowingLoad(cluster, 2);
    load.start();
    try {
      for (const to of ["b", "a"]) {
        await new Promise((r) => setTimeout(r, 1500));
        const { exit, output } = await switchover(to);
        expect(exit.code, output).toBe(0);
        const from = to === "a" ? "b" : "a";
        await cluster.waitFor(to, "/primary", 200);
        await cluster.waitFor(from, "/replica?lag=10000", 200, 30_000);
        // The old primary's server no longer waits for a capture that does not run there.
        expect(await synchronousStandbyNames(from)).toBe("");
        expect(cluster.processes.get(from)?.output()).toMatch(
          /synchronous_standby_names named this database's capture/,
        );
      }
    } finally {
      await load.stop();
    }
    const rows = await runSql<{ writer: number; seq: number }>(
      cluster.spec("a").databaseUrl,
      "SELECT writer, seq FROM ha_writes",
    );
    const present = new Set(rows.rows.map((r) => `${r.writer}/${r.seq}`));
    expect(load.acknowledged.length).toBeGreaterThan(0);
    expect(load.acknowledged.filter((a) => !present.has(`${a.writer}/${a.seq}`))).toEqual([]);
    expect(load.errors).toEqual([]);
    const marker = await runSql<{ id: string }>(
      cluster.spec("a").databaseUrl,
      "INSERT INTO ha_writes (writer, seq) VALUES (0, 1) RETURNING id::text",
    );
    const id = marker.rows[0]?.id as string;
    const deadline = Date.now() + 30_000;
    while (
      !(await runSql(cluster.spec("b").databaseUrl, "SELECT 1 FROM ha_writes WHERE id = $1", [id])).rowCount
    ) {
      if (Date.now() > deadline) throw new Error(`b did not get row ${id} from a`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(
      describeDifferences(
        await compareTables(cluster.spec("a").databaseUrl, cluster.spec("b").databaseUrl, [HA_LOAD_TABLE]),
      ),
    ).toEqual([]);
  });
});
