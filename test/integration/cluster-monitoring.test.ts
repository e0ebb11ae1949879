// What an operator sees of a cluster of `diffrelay node` processes (issue 23, visibility): a real Prometheus
// scrapes two nodes (a primary and a standby, automatic failover on): every node panel of the shipped Grafana
// dashboard returns series, the shipped DiffrelayNoPrimary rule is quiet while the primary serves and finds
// no primary as soon as the primary's node is gone (its series vanish); `diffrelay list` shows the lease
// holder, each node's view of the lease's age and when the standby would start a failover.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { clusterDataTopics } from "../../src/kafka/topic-names.js";
import { spawnDiffrelay } from "../support/child-process.js";
import { commitSynchronously, HA_LOAD_DDL, HA_LOAD_TABLE, TestCluster } from "../support/cluster-nodes.js";
import {
  dashboardQueries,
  readsNodes,
  shippedAlertRules,
  withoutGrafanaVariables,
} from "../support/dashboard.js";
import { PrometheusServer } from "../support/prometheus.js";
import { exitWithin, stopProcess } from "../support/replication-pipeline.js";
import {
  createTestDatabase,
  runSql,
  type TestDatabase,
  testServices,
  uniqueName,
} from "../support/services.js";

// Long enough that a loaded machine's slow renewal does not start an election during the test.
const LEASE_TTL_MS = 20_000;

const databases: TestDatabase[] = [];
let cluster: TestCluster;
let prometheus: PrometheusServer | undefined;

beforeAll(async () => {
  const services = testServices();
  for (const server of [services.sourceUrl, services.standbyUrls[0] as string]) {
    const db = await createTestDatabase(server, "mon");
    await commitSynchronously(db);
    await runSql(db.url, HA_LOAD_DDL);
    databases.push(db);
  }
  cluster = await TestCluster.create({
    name: uniqueName("mon").replace(/_/g, "-"),
    databases: databases.map((db, i) => ({ name: ["a", "b"][i] as string, url: db.url })),
    brokers: services.kafkaBrokers,
    topicPrefix: "montest",
    tables: [HA_LOAD_TABLE],
    automaticFailover: true,
  });
  const lease = ["--lease-ttl-ms", String(LEASE_TTL_MS)];
  cluster.start("a", ["--initial-primary", "a", ...lease]);
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
  cluster.start("b", lease);
  await cluster.waitFor("b", "/replica", 200);
  prometheus = await PrometheusServer.start({
    jobs: [{ job: "diffrelay-node", targets: cluster.nodes.map((n) => `127.0.0.1:${n.port}`) }],
  });
}, 180_000);

afterAll(async () => {
  await prometheus?.stop();
  await cluster?.stopAll();
  for (const db of databases) await db.drop().catch(() => undefined);
});

describe("monitoring a cluster of nodes", () => {
  it("diffrelay list shows the lease holder, the lease's age on each node and when a failover would start", async () => {
    const list = spawnDiffrelay(["list", ...cluster.clusterArgs(), "--json"]);
    expect((await exitWithin(list, 60_000)).code, list.output()).toBe(0);
    const line = list
      .output()
      .split("\n")
      .find((l) => l.startsWith("{"));
    if (!line) throw new Error(`list printed no listing:\n${list.output()}`);
    const listing = JSON.parse(line);
    expect(listing.lease).toEqual(
      expect.objectContaining({ holder: "a", epoch: listing.epoch, ttlMs: LEASE_TTL_MS }),
    );
    const node = (name: string) => listing.nodes.find((n: { name: string }) => n.name === name);
    const a = node("a").lease;
    const b = node("b").lease;
    // The primary holds it (renewed every second) and elects nothing.
    expect(a.holder).toBe("a");
    expect(a.ttlMs).toBe(LEASE_TTL_MS);
    expect(a.heldForMs).toBeGreaterThan(0);
    expect(a.failoverInMs).toBeNull();
    // The standby saw a renewal well within the TTL and would elect itself (rank 0) once the TTL passed.
    expect(b.holder).toBe("a");
    expect(b.heldForMs).toBeNull();
    expect(b.ageMs).toBeGreaterThanOrEqual(0);
    expect(b.ageMs).toBeLessThan(LEASE_TTL_MS);
    expect(b.failoverInMs).toBeGreaterThan(0);
    expect(b.failoverInMs).toBeLessThanOrEqual(LEASE_TTL_MS);
    expect(b.electionRunning).toBe(false);

    const table = spawnDiffrelay(["list", ...cluster.clusterArgs()]);
    expect((await exitWithin(table, 60_000)).code, table.output()).toBe(0);
    const text = table.output();
    expect(text).toContain(`lease held by a (ttl ${(LEASE_TTL_MS / 1000).toFixed(1)} s`);
    expect(text).toMatch(/\n\s*node\s+role\s+reports\s+epoch\s+lag ms\s+lease\s+failover\s/);
    expect(text).toMatch(/\na\s+primary\s.*\sheld, \d+\.\d s left\s/);
    expect(text).toMatch(/\nb\s+standby\s.*\sage \d+\.\d s of 20\.0 s\s+in \d+\.\d s\s/);
  });

  it("every node panel of the dashboard returns series; no primary is found once the primary's node is gone", {
    timeout: 120_000,
  }, async () => {
    const server = prometheus as PrometheusServer;
    await server.waitUntil(
      async () => (await server.query('up{job="diffrelay-node"} == 1')).length === 2,
      30_000,
      "both nodes to be scraped",
    );
    // Two scrapes of each counter, for increase() over the window.
    await new Promise((r) => setTimeout(r, 5_000));
    const queries = dashboardQueries().filter((q) => readsNodes(q.expr));
    expect(queries.length).toBeGreaterThanOrEqual(10);
    const empty: string[] = [];
    for (const { panel, expr } of queries) {
      const result = await server.query(withoutGrafanaVariables(expr, "5s"));
      if (result.length === 0) empty.push(`${panel}: ${expr}`);
    }
    expect(empty).toEqual([]);
    const writable = await server.query("sum(diffrelay_node_writable_primary)");
    expect(Number(writable[0]?.value[1])).toBe(1);

    const rule = shippedAlertRules().find((r) => r.alert === "DiffrelayNoPrimary");
    if (!rule) throw new Error("DiffrelayNoPrimary is not in the shipped rules");
    expect(await server.query(rule.expr)).toEqual([]);
    await stopProcess(cluster.processes.get("a") as NonNullable<ReturnType<typeof cluster.processes.get>>);
    // Within the TTL b does not elect itself: the cluster has no writable primary, and the rule sees it
    // although a's series are gone (both node targets counted).
    await server.waitUntil(
      async () => {
        const found = await server.query(rule.expr);
        return found.length === 1 && Number(found[0]?.value[1]) === 2;
      },
      15_000,
      "DiffrelayNoPrimary's expression to find no primary",
    );
  });
});
