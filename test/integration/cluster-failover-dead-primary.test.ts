// Failover of an HA cluster whose primary's machine died: its PostgreSQL server and its `diffrelay node`
// both killed with -9, so nothing of the old primary answers. Zero-loss mode was on; whether it was, and
// whether the capture was the synchronous standby, must come from what the cluster topic holds (the primary's
// last report), so that `failover --cluster` and an orchestrator reading its exit code know without the
// dead node. The primary runs on a private server (a kill -9 of the shared stack's servers is not allowed),
// the standbys on the stack's.
import { afterAll, describe, expect, it } from "vitest";
import { writeUntilDead } from "../support/acknowledged-writes.js";
import { spawnDiffrelay } from "../support/child-process.js";
import { TestCluster } from "../support/cluster-nodes.js";
import { type PrivatePostgres, startPrivatePostgres } from "../support/private-postgres.js";
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
const CLIENTS = 4;
const services = testServices();
const name = uniqueName("deadprimary").replace(/_/g, "-");
const prefix = uniqueName("deadprimarycl");
let primary: PrivatePostgres | undefined;
let cluster: TestCluster | undefined;
const databases = new Map<string, TestDatabase>();
// Node names no other test uses: an applier's consumer group is named after its node (diffrelay-apply-<name>).
const [A, B, C] = ["deadpa", "deadpb", "deadpc"] as const;

afterAll(async () => {
  await cluster?.stopAll();
  // First: with zero-loss on and no capture, dropping its database would wait for the capture.
  await primary?.destroy();
  for (const [node, db] of databases) if (node !== A) await db.drop().catch(() => undefined);
  const data = [`${prefix}.${name}`, `${prefix}.${name}.e1`];
  await deleteTopics(services.kafkaBrokers, [
    ...data.flatMap((t) => [t, `${t}.schemas`]),
    `${prefix}.cluster.${name}`,
    `${prefix}.cluster.${name}.claim.e0`,
    `${prefix}.cluster.${name}.claim.e1`,
  ]);
});

async function ids(url: string): Promise<Set<string>> {
  return new Set(
    await withClient(url, async (client) =>
      (await client.query<{ id: string }>("SELECT id::text FROM acks")).rows.map((r) => r.id),
    ),
  );
}

describe("diffrelay failover --cluster after the primary's server and node died (kill -9 of both)", () => {
  it("knows from the cluster topic that zero-loss mode was on: exit 0, every acknowledged id on the new primary; the old primary then rejoins at its reported address", async () => {
    primary = await startPrivatePostgres("failover-dead-primary");
    // The client's COMMIT returns once its WAL is flushed and the capture (the synchronous standby) has it in Kafka.
    await primary.configure({ synchronous_commit: "on" });
    databases.set(A, await createTestDatabase(primary.url, "deadprim_a"));
    for (const [i, node] of [B, C].entries())
      databases.set(node, await createTestDatabase(services.standbyUrls[i] as string, `deadprim_${node}`));
    for (const db of databases.values()) await runSql(db.url, DDL);
    const c = await TestCluster.create({
      name,
      databases: [...databases].map(([n, d]) => ({ name: n, url: d.url })),
      brokers: services.kafkaBrokers,
      topicPrefix: prefix,
      tables: ["public.acks"],
    });
    cluster = c;
    const nodeA = c.start(A, ["--initial-primary", A, "--zero-loss"]);
    await c.waitFor(A, "/primary", 200);
    for (const node of [B, C]) {
      const seed = spawnDiffrelay([
        "seed",
        "--source-url",
        databases.get(A)?.url as string,
        "--standby-url",
        databases.get(node)?.url as string,
        "--standby-name",
        node,
        "--brokers",
        services.kafkaBrokers.join(","),
        "--topic",
        `${prefix}.${name}`,
      ]);
      expect((await seed.exited).code, seed.output()).toBe(0);
      c.start(node, ["--zero-loss"]);
    }
    for (const node of [B, C]) await c.waitFor(node, "/replica", 200);
    expect((await c.status(A)).service?.zeroLoss).toBe("required");

    const writers = writeUntilDead(databases.get(A)?.url as string, CLIENTS);
    // Longer than a node's report interval (5 s): A's last report was written under this load.
    await new Promise((r) => setTimeout(r, 7000));
    nodeA.kill("SIGKILL");
    await nodeA.exited;
    await primary.kill();
    const acknowledged = await writers;
    expect(acknowledged.length).toBeGreaterThan(20);
    expect(await c.probe(A, "/status")).toBe(0);

    const run = spawnDiffrelay(["failover", ...c.clusterArgs(), "--to", B, "--json"]);
    const exit = await run.exited;
    const line = run
      .output()
      .split("\n")
      .find((l) => l.startsWith('{"outcome"'));
    if (!line) throw new Error(`failover printed no report:\n${run.output()}`);
    const report = JSON.parse(line);
    expect(report.mayBeLost, run.output()).toMatchObject({ acknowledgedCommits: "none", slotLagBytes: 0 });
    expect(exit.code, run.output()).toBe(0);
    expect(report).toMatchObject({
      outcome: "promoted",
      epoch: 1,
      newPrimary: B,
      following: [C],
      oldPrimary: { name: A, reachable: false, lastKnown: { zeroLoss: "required", syncState: "sync" } },
    });
    expect(report.oldPrimary.lastKnown.from).toMatch(new RegExp(`^${A}'s report on the cluster topic at `));

    const onB = await ids(databases.get(B)?.url as string);
    const missing = acknowledged.filter((id) => !onB.has(id));
    expect(missing).toEqual([]);

    // The machine comes back: the old primary's node rejoins by itself, reaching the new primary's database
    // at the address in its report (host, port, database) with the peer credentials.
    await primary.restart();
    const peerPassword = decodeURIComponent(new URL(databases.get(B)?.url as string).password);
    c.start(A, ["--zero-loss", `--peer-password=${peerPassword}`]);
    await c.waitFor(A, "/replica", 200, 120_000);
    expect((await c.status(A)).rejoin).toMatchObject({ state: "rejoined", epoch: 1, error: null });
    console.log(
      `failover after the primary's server and node died, zero-loss on: ${acknowledged.length} commits acknowledged, ${missing.length} missing on the new primary; failover exit ${exit.code}`,
    );
  }, 300_000);
});
