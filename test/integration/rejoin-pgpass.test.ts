// Servers whose passwords differ (the local stack's do: each has its own generated one): every node's
// --database-url carries no password and a pgpass file holds one line per server, so the old primary's
// automatic rejoin reaches whichever server became primary without --peer-password.
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clusterDataTopics } from "../../src/kafka/topic-names.js";
import { spawnDiffrelay } from "../support/child-process.js";
import { commitSynchronously, HA_LOAD_DDL, HA_LOAD_TABLE, TestCluster } from "../support/cluster-nodes.js";
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
let passDir: string;
const pgpassBefore = process.env.PGPASSFILE;

/** pgpass escapes ':' and '\' in its fields. */
const pgpassField = (s: string) => s.replace(/[\\:]/g, (c) => `\\${c}`);

/** The URL without its password: the node and the test find it in the pgpass file. */
function withoutPassword(url: string): string {
  const u = new URL(url);
  u.password = "";
  return u.toString();
}

beforeAll(async () => {
  const services = testServices();
  const servers = [services.sourceUrl, services.standbyUrls[0] as string];
  passDir = mkdtempSync(join(tmpdir(), "diffrelay-pgpass-"));
  const pgpass = join(passDir, "pgpass");
  writeFileSync(
    pgpass,
    servers
      .map((s) => new URL(s))
      .map((u) =>
        [u.hostname, u.port || "5432", "*", decodeURIComponent(u.username), decodeURIComponent(u.password)]
          .map(pgpassField)
          .join(":"),
      )
      .join("\n")
      .concat("\n"),
    { mode: 0o600 },
  );
  // The nodes (children of this process) and this test's own connections read it.
  process.env.PGPASSFILE = pgpass;
  for (const server of servers) {
    const db = await createTestDatabase(server, "pgpass");
    await commitSynchronously(db);
    await runSql(db.url, HA_LOAD_DDL);
    databases.push(db);
  }
  cluster = await TestCluster.create({
    name: uniqueName("pgpass").replace(/_/g, "-"),
    databases: databases.map((db, i) => ({ name: ["a", "b"][i] as string, url: withoutPassword(db.url) })),
    brokers: services.kafkaBrokers,
    topicPrefix: "pgpasstest",
    tables: [HA_LOAD_TABLE],
  });
}, 120_000);

afterAll(async () => {
  await cluster?.stopAll();
  for (const db of databases) await db.drop().catch(() => undefined);
  if (pgpassBefore === undefined) delete process.env.PGPASSFILE;
  else process.env.PGPASSFILE = pgpassBefore;
  if (passDir) rmSync(passDir, { recursive: true, force: true });
});

const url = (node: string) => cluster.spec(node).databaseUrl;

async function command(args: string[], timeoutMs: number) {
  const p = spawnDiffrelay([...args, ...cluster.clusterArgs(), "--json"]);
  const exit = await exitWithin(p, timeoutMs);
  return { code: exit.code, output: p.output() };
}

describe("rejoin through a pgpass file", () => {
  it("an old primary whose server's password differs from the new primary's rejoins with URLs without passwords and a pgpass file", {
    timeout: 600_000,
  }, async () => {
    expect(url("a")).not.toMatch(/:[^/@]*@/);
    cluster.start("a", ["--initial-primary", "a"]);
    await cluster.waitFor("a", "/primary", 200, 180_000);
    const topic0 = clusterDataTopics({ topicPrefix: cluster.topicPrefix }, cluster.name, 0).data;
    const seed = spawnDiffrelay([
      "seed",
      "--source-url",
      url("a"),
      "--standby-url",
      url("b"),
      "--standby-name",
      "b",
      "--brokers",
      testServices().kafkaBrokers.join(","),
      "--topic",
      topic0,
    ]);
    expect((await exitWithin(seed, 180_000)).code, seed.output()).toBe(0);
    cluster.start("b");
    await cluster.waitFor("b", "/replica?lag=10000", 200, 180_000);
    await runSql(url("a"), "INSERT INTO ha_writes (writer, seq) SELECT 1, g FROM generate_series(1, 20) g");

    // a goes down with its capture: what it commits now reaches no other node, and must be undone.
    const a = cluster.processes.get("a");
    a?.kill("SIGKILL");
    await a?.exited;
    await runSql(url("a"), "INSERT INTO ha_writes (writer, seq) SELECT -9, g FROM generate_series(1, 3) g");
    // Until its last report is old, a counts as a member to wait for.
    await new Promise((r) => setTimeout(r, 21_000));
    const failover = await command(["failover", "--to", "b"], 150_000);
    expect([0, 8], failover.output).toContain(failover.code);
    await cluster.waitFor("b", "/primary", 200, 180_000);
    await runSql(url("b"), "INSERT INTO ha_writes (writer, seq) SELECT 2, g FROM generate_series(1, 10) g");

    // No --peer-password: a reaches b's server (another password) through the pgpass file.
    const restarted = cluster.start("a");
    await cluster.waitFor("a", "/replica?lag=30000", 200, 180_000);
    const marker = await runSql<{ id: string }>(
      url("b"),
      "INSERT INTO ha_writes (writer, seq) VALUES (0, 1) RETURNING id::text",
    );
    const id = marker.rows[0]?.id as string;
    await expect
      .poll(async () => (await runSql(url("a"), "SELECT 1 FROM ha_writes WHERE id = $1", [id])).rowCount, {
        timeout: 60_000,
      })
      .toBe(1);
    expect(describeDifferences(await compareTables(url("b"), url("a"), [HA_LOAD_TABLE]))).toEqual([]);
    expect((await runSql(url("a"), "SELECT 1 FROM ha_writes WHERE writer = -9")).rowCount).toBe(0);
    const status = await cluster.status("a");
    expect(status.rejoin, restarted.output().slice(-4000)).toMatchObject({
      state: "rejoined",
      method: "rewind",
    });
  });
});
