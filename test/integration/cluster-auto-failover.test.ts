// Automatic failover: nobody runs `diffrelay failover`. The primary's node holds a lease in the cluster
// topic; when it stops renewing, the standbys elect the most caught-up one, which takes over by itself.
// Faults from outside, zero-loss mode, synchronous_commit = on everywhere: the primary's node killed with -9
// (its database stays up: the node's fence watchdog must fence it), and the primary's node frozen with
// SIGSTOP past its lease (the watchdog fences at the lease's end; the thawed node must not serve).
import { writeFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { spawnDiffrelay } from "../support/child-process.js";
import { commitSynchronously, TestCluster } from "../support/cluster-nodes.js";
import {
  createTestDatabase,
  runSql,
  type TestDatabase,
  testServices,
  uniqueName,
  withClient,
} from "../support/services.js";
import { deleteTopics } from "../support/topic-reader.js";

const DDL = "CREATE TABLE acks (id bigint PRIMARY KEY, written_by int NOT NULL);";
const services = testServices();
const clusters: { cluster: TestCluster; databases: TestDatabase[]; name: string; prefix: string }[] = [];

afterAll(async () => {
  for (const { cluster, databases, name, prefix } of clusters) {
    await cluster.stopAll();
    // Every node's log, for a run that failed (the assertion shows only the node it waited for).
    if (process.env.DIFFRELAY_TEST_NODE_LOGS)
      for (const [node, p] of cluster.processes)
        writeFileSync(`${process.env.DIFFRELAY_TEST_NODE_LOGS}/${node}.log`, p.output());
    for (const db of databases) await db.drop().catch(() => undefined);
    const topics = [`${prefix}.${name}`, ...[1, 2, 3].map((e) => `${prefix}.${name}.e${e}`)];
    await deleteTopics(services.kafkaBrokers, [
      ...topics.flatMap((t) => [t, `${t}.schemas`]),
      `${prefix}.cluster.${name}`,
      ...[0, 1, 2, 3].map((e) => `${prefix}.cluster.${name}.claim.e${e}`),
    ]);
  }
});

/** A cluster of three nodes on the stack's three servers, the first its primary, the others seeded and following. */
async function zeroLossCluster(tag: string): Promise<{ c: TestCluster; urls: Map<string, string> }> {
  const name = uniqueName(`auto${tag}`).replace(/_/g, "-");
  const prefix = uniqueName(`auto${tag}cl`);
  const nodes = [`auto${tag}a`, `auto${tag}b`, `auto${tag}c`];
  const servers = [services.sourceUrl, ...services.standbyUrls];
  const databases: TestDatabase[] = [];
  for (const [i, node] of nodes.entries())
    databases.push(await createTestDatabase(servers[i] as string, node));
  for (const db of databases) {
    await runSql(db.url, DDL);
    await commitSynchronously(db);
  }
  const c = await TestCluster.create({
    name,
    databases: nodes.map((n, i) => ({ name: n, url: databases[i]?.url as string })),
    brokers: services.kafkaBrokers,
    topicPrefix: prefix,
    tables: ["public.acks"],
    automaticFailover: true,
  });
  clusters.push({ cluster: c, databases, name, prefix });
  const [a, b, cc] = nodes as [string, string, string];
  // b is the one candidate (c never is), so that a, restarted or thawed, reaches b's database with b's
  // password: the stack's servers have different ones.
  const peerPassword = decodeURIComponent(new URL(databases[1]?.url as string).password);
  c.start(a, ["--initial-primary", a, "--zero-loss", `--peer-password=${peerPassword}`]);
  await c.waitFor(a, "/primary", 200);
  for (const node of [b, cc]) {
    const seed = spawnDiffrelay([
      "seed",
      "--source-url",
      databases[0]?.url as string,
      "--standby-url",
      c.spec(node).databaseUrl,
      "--standby-name",
      node,
      "--brokers",
      services.kafkaBrokers.join(","),
      "--topic",
      `${prefix}.${name}`,
    ]);
    expect((await seed.exited).code, seed.output()).toBe(0);
    c.start(node, node === cc ? ["--zero-loss", "--failover-priority", "0"] : ["--zero-loss"]);
  }
  for (const node of [b, cc]) await c.waitFor(node, "/replica", 200);
  return { c, urls: new Map(nodes.map((n, i) => [n, databases[i]?.url as string])) };
}

/** Clients writing ids to one database until their sessions end; every acknowledged id with the time its COMMIT returned. */
function writeUntilCut(url: string, clients: number, from: number): Promise<{ id: string; at: number }[]> {
  const one = async (client: number) => {
    const acknowledged: { id: string; at: number }[] = [];
    await withClient(url, async (c) => {
      c.on("error", () => undefined);
      try {
        for (let id = from + client; ; id += clients) {
          await c.query("INSERT INTO acks (id, written_by) VALUES ($1, $2)", [id, client]);
          acknowledged.push({ id: String(id), at: Date.now() });
        }
      } catch {
        // Fenced: sessions ended. A commit that did not return is not acknowledged.
      }
    }).catch(() => undefined);
    return acknowledged;
  };
  return Promise.all(Array.from({ length: clients }, (_, i) => one(i + 1))).then((ids) => ids.flat());
}

/** The new primary's own account of the election, from its log. */
function electionLog(c: TestCluster, node: string): string {
  return (c.processes.get(node)?.output() ?? "")
    .split("\n")
    .filter((l) => /automatic failover|failover:|lease/.test(l))
    .map((l) => {
      try {
        const { time, msg } = JSON.parse(l);
        return `  ${time} ${msg}`;
      } catch {
        return `  ${l}`;
      }
    })
    .join("\n");
}

async function waitForNewPrimary(c: TestCluster, old: string, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const p = await c.primary();
    if (p && p.name !== old) return p;
    if (Date.now() > deadline) {
      const outputs = c.nodes.map((n) => `--- ${n.name}\n${c.processes.get(n.name)?.output().slice(-4000)}`);
      throw new Error(`no standby became the primary within ${timeoutMs} ms:\n${outputs.join("\n")}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** The first id a client gets acknowledged on the new primary, and when. */
async function firstWrite(url: string, id: number): Promise<number> {
  for (;;) {
    try {
      await runSql(url, `INSERT INTO acks (id, written_by) VALUES (${id}, 0)`);
      return Date.now();
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

async function idsOn(url: string): Promise<Set<string>> {
  const { rows } = await runSql<{ id: string }>(url, "SELECT id::text FROM acks");
  return new Set(rows.map((r) => r.id));
}

async function refusesConnections(url: string): Promise<string | null> {
  try {
    await runSql(url, "SELECT 1");
    return null;
  } catch (err) {
    return (err as { code?: string }).code ?? (err as Error).message;
  }
}

describe("automatic failover (the primary's lease in the cluster topic)", () => {
  it("the primary's node killed with -9, its database up: the watchdog fences it, the most caught-up standby takes over by itself, nothing acknowledged is lost, and the same command line rejoins the old primary", async () => {
    const { c, urls } = await zeroLossCluster("kill");
    const [a, b, cc] = c.nodes.map((n) => n.name) as [string, string, string];
    expect((await c.status(b)).lease).toMatchObject({ holder: a, ttlMs: 5000 });
    const writers = writeUntilCut(urls.get(a) as string, 4, 0);
    await new Promise((r) => setTimeout(r, 3000));
    const killedAt = Date.now();
    const nodeA = c.processes.get(a);
    nodeA?.kill("SIGKILL");
    await nodeA?.exited;
    const acknowledged = await writers;
    // The watchdog fenced the database when its node died: no session, no new connection.
    expect(await refusesConnections(urls.get(a) as string)).toBe("55000");
    const lastOnOld = Math.max(...acknowledged.map((w) => w.at));
    expect(lastOnOld).toBeLessThan(killedAt + 2000);

    const next = await waitForNewPrimary(c, a, 60_000);
    const writableAt = await firstWrite(next.databaseUrl, 1_000_000_000);
    const seconds = (writableAt - killedAt) / 1000;
    console.log(
      `automatic failover after kill -9 of the primary's node: ${next.name} accepted its first write ${seconds.toFixed(2)} s after the kill; ${acknowledged.length} commits acknowledged by ${a}`,
    );
    console.log(electionLog(c, next.name));
    expect(next.name).toBe(b);
    expect(seconds).toBeLessThan(20);
    const onNew = await idsOn(next.databaseUrl);
    expect(acknowledged.filter((w) => !onNew.has(w.id))).toEqual([]);
    const other = next.name === b ? cc : b;
    await c.waitFor(other, "/replica", 200, 60_000);
    expect((await c.status(next.name)).lease).toMatchObject({ holder: next.name });

    await c.restart(a);
    await c.waitFor(a, "/replica", 200, 120_000);
    expect((await c.status(a)).rejoin).toMatchObject({ state: "rejoined", error: null });
    // The new primary's node, stopping, fences its database and resets synchronous_standby_names on its
    // server, which the next test's cluster shares.
    await c.stopAll();
  }, 300_000);

  it("the primary's node frozen (SIGSTOP) past its lease: its commits are never acknowledged after the new primary's first, the watchdog fences it, and once thawed it rejoins by itself", async () => {
    const { c, urls } = await zeroLossCluster("stop");
    const [a] = c.nodes.map((n) => n.name) as [string];
    const writers = writeUntilCut(urls.get(a) as string, 4, 0);
    await new Promise((r) => setTimeout(r, 3000));
    const nodeA = c.processes.get(a);
    const frozenAt = Date.now();
    nodeA?.kill("SIGSTOP");
    try {
      const next = await waitForNewPrimary(c, a, 60_000);
      const firstOnNew = await firstWrite(next.databaseUrl, 1_000_000_000);
      const acknowledged = await writers;
      const lastOnOld = Math.max(...acknowledged.map((w) => w.at));
      console.log(electionLog(c, next.name));
      console.log(
        `automatic failover after SIGSTOP of the primary's node: ${next.name} accepted its first write ${((firstOnNew - frozenAt) / 1000).toFixed(2)} s after the freeze; ${a}'s last acknowledged commit ${lastOnOld - frozenAt} ms after it`,
      );
      // Zero-loss: a commit waits for the frozen capture, so none is acknowledged after the freeze at all.
      expect(lastOnOld).toBeLessThan(firstOnNew);
      expect(await refusesConnections(urls.get(a) as string)).toBe("55000");
      const onNew = await idsOn(next.databaseUrl);
      expect(acknowledged.filter((w) => !onNew.has(w.id))).toEqual([]);
    } finally {
      nodeA?.kill("SIGCONT");
    }
    // Thawed, it finds its lease lapsed and the cluster moved: it must not serve, and it rejoins by itself.
    expect(await c.probe(a, "/primary")).not.toBe(200);
    await c.waitFor(a, "/replica", 200, 120_000);
  }, 300_000);
});
