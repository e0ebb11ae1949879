// `diffrelay status` pointed at the nodes of an HA cluster: it reads each node's /status (its role, epoch and
// last error, and the capture's or applier's report inside it), as it reads standalone processes' /status.
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

const databases: TestDatabase[] = [];
let cluster: TestCluster;
let topic: string;

beforeAll(async () => {
  const services = testServices();
  for (const server of [services.sourceUrl, services.standbyUrls[0] as string]) {
    const db = await createTestDatabase(server, "status_nodes");
    await commitSynchronously(db);
    await runSql(db.url, HA_LOAD_DDL);
    databases.push(db);
  }
  cluster = await TestCluster.create({
    name: uniqueName("status").replace(/_/g, "-"),
    databases: databases.map((db, i) => ({ name: ["a", "b"][i] as string, url: db.url })),
    brokers: services.kafkaBrokers,
    topicPrefix: "statustest",
    tables: [HA_LOAD_TABLE],
  });
  topic = clusterDataTopics({ topicPrefix: cluster.topicPrefix }, cluster.name, 0).data;
  cluster.start("a", ["--initial-primary", "a"]);
  await cluster.waitFor("a", "/primary", 200, 180_000);
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
    topic,
  ]);
  expect((await exitWithin(seed, 180_000)).code, seed.output()).toBe(0);
  cluster.start("b");
  await cluster.waitFor("b", "/replica?lag=10000", 200, 180_000);
}, 600_000);

afterAll(async () => {
  await cluster?.stopAll();
  for (const db of databases) await db.drop().catch(() => undefined);
});

const status = async (...args: string[]) => {
  const p = spawnDiffrelay([
    "status",
    "--brokers",
    testServices().kafkaBrokers.join(","),
    "--topic",
    topic,
    "--standbys",
    `b=${cluster.spec("b").databaseUrl}`,
    ...args,
  ]);
  // Generous: a CLI start took 20 s on a 2-core machine under a load average of 15.
  const exit = await exitWithin(p, 120_000);
  return { code: exit.code, output: p.output() };
};

describe("diffrelay status --node-urls", () => {
  it("reads each node's /status: its role and epoch, and the last errors of the capture and applier it runs", {
    timeout: 400_000,
  }, async () => {
    const nodeUrls = `${cluster.apiUrl("a")},${cluster.apiUrl("b")}/status`;
    const json = await status("--node-urls", nodeUrls, "--json");
    expect(json.code, json.output).toBe(0);
    const report = JSON.parse(json.output.trim().split("\n").at(-1) as string);
    expect(report.nodes.map((n: { node: string; nodeRole: string }) => [n.node, n.nodeRole])).toEqual([
      ["a", "primary"],
      ["b", "standby"],
    ]);
    for (const n of report.nodes) {
      expect(n.error, n.url).toBeNull();
      // The bootstrap's epoch.
      expect(n.epoch, n.url).toBe(0);
      expect(n.clusterPrimary, n.url).toBe("a");
    }
    // From the nodes' capture and applier reports: no error, rather than "unknown" (no URL answered).
    expect(report.source.lastError).toBeNull();
    expect(report.standbys[0].lastError).toBeNull();

    const table = await status("--node-urls", nodeUrls);
    expect(table.code, table.output).toBe(0);
    expect(table.output).toMatch(/^a\s+primary\s+\d+/m);
    expect(table.output).toMatch(/^b\s+standby\s+\d+/m);
    expect(table.output).not.toMatch(/last error unknown/);
  });

  it("with --node-urls alone (no source, standbys or topic), lists the nodes", {
    timeout: 200_000,
  }, async () => {
    const p = spawnDiffrelay(["status", "--node-urls", `${cluster.apiUrl("a")},${cluster.apiUrl("b")}`]);
    const exit = await exitWithin(p, 120_000);
    expect(exit.code, p.output()).toBe(0);
    expect(p.output()).toMatch(/^a\s+primary\s+0\s+epoch 0, primary a, stable\s+yes/m);
    expect(p.output()).toMatch(/^b\s+standby\s+0\s+epoch 0, primary a, stable\s+no/m);
    expect(p.output()).not.toMatch(/^source/m);
  });

  it("names a node whose /status does not answer, and still reports the others", {
    timeout: 200_000,
  }, async () => {
    const gone = "http://127.0.0.1:9";
    const r = await status("--node-urls", `${cluster.apiUrl("a")},${gone}`, "--json");
    expect(r.code, r.output).toBe(0);
    const report = JSON.parse(r.output.trim().split("\n").at(-1) as string);
    expect(report.nodes[0].nodeRole).toBe("primary");
    expect(report.nodes[1]).toMatchObject({ url: `${gone}/status`, nodeRole: null });
    expect(report.nodes[1].error).toMatch(/did not answer/);
  });
});
