import pg from "pg";
import { afterAll, beforeAll, expect, it } from "vitest";
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

// The switchover fence ends every client session of the old primary's database; the capture's own
// catalog session, which loads a relation's schema when its first change arrives, must outlive it.

const FRESH_DDL = "CREATE TABLE fresh (id integer PRIMARY KEY, note text NOT NULL);";
const databases: TestDatabase[] = [];
let cluster: TestCluster;

beforeAll(async () => {
  const services = testServices();
  for (const server of [services.sourceUrl, services.standbyUrls[0] as string]) {
    const db = await createTestDatabase(server, "fence_capture");
    await runSql(db.url, HA_LOAD_DDL + FRESH_DDL);
    databases.push(db);
  }
  cluster = await TestCluster.create({
    name: uniqueName("fence").replace(/_/g, "-"),
    databases: databases.map((db, i) => ({ name: ["a", "b"][i] as string, url: db.url })),
    brokers: services.kafkaBrokers,
    topicPrefix: "fencetest",
    tables: [HA_LOAD_TABLE, "public.fresh"],
  });
  cluster.start("a", ["--initial-primary", "a"]);
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
    services.kafkaBrokers.join(","),
    "--topic",
    clusterDataTopics({ topicPrefix: cluster.topicPrefix }, cluster.name, 0).data,
  ]);
  expect((await exitWithin(seed, 60_000)).code, seed.output()).toBe(0);
  cluster.start("b");
  await cluster.waitFor("b", "/replica?lag=10000", 200);
}, 180_000);

afterAll(async () => {
  await cluster?.stopAll();
  for (const db of databases) await db.drop().catch(() => undefined);
});

async function waitForRow(url: string, sql: string, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await runSql(url, sql)).rowCount) {
    if (Date.now() > deadline) throw new Error(`${what} did not arrive within 30 s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

it("a switchover publishes a transaction committed just before the fence on a table the capture has not seen yet", {
  timeout: 240_000,
}, async () => {
  const a = cluster.spec("a").databaseUrl;
  const b = cluster.spec("b").databaseUrl;
  await runSql(a, "INSERT INTO ha_writes (writer, seq) VALUES (1, 1)");
  await waitForRow(b, "SELECT 1 FROM ha_writes WHERE writer = 1", "the first ha_writes row on b");

  // A client's open ALTER SEQUENCE holds a lock that the capture's heartbeat (reading the replicated
  // sequences' positions) waits for on its catalog session: the schema of `fresh` is then loaded only
  // after the fence has ended that client, as when the fence comes before the capture reads the change.
  const holder = new pg.Client({ connectionString: a });
  holder.on("error", () => undefined);
  await holder.connect();
  try {
    await holder.query("BEGIN");
    await holder.query("ALTER SEQUENCE ha_writes_id_seq CACHE 1");
    await waitForRow(
      a,
      `SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'
          AND query LIKE 'WITH published AS%'`,
      "the capture's heartbeat waiting for the sequence's lock",
    );
    await runSql(a, "INSERT INTO fresh VALUES (1, 'committed before the fence')");

    const switchover = spawnDiffrelay([
      "switchover",
      ...cluster.clusterArgs(),
      "--to",
      "b",
      "--json",
      "--timeout",
      "30000",
    ]);
    const exit = await exitWithin(switchover, 90_000);
    expect(
      exit.code,
      `${switchover.output()}\nnode a:\n${cluster.processes.get("a")?.output().slice(-4000)}`,
    ).toBe(0);
  } finally {
    await holder.end().catch(() => undefined);
  }
  expect((await runSql(b, "SELECT note FROM fresh")).rows).toEqual([{ note: "committed before the fence" }]);
  await cluster.waitFor("b", "/primary", 200);
  await cluster.waitFor("a", "/replica?lag=10000", 200);
});
