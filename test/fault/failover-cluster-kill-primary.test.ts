// Failover of an HA cluster (issue 13, items 4 and 7): three `diffrelay node` processes, the primary's on a
// private cluster with zero-loss mode on. kill -9 of the primary's postmaster under a write load whose
// clients log every id whose COMMIT returned, then `diffrelay failover --cluster … --to b`: it claims the
// next epoch, the standby nodes drain and change roles, and every acknowledged id is on the new primary,
// which accepts writes (/primary 200), while the other standby follows it and holds the same rows.
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
import { compareTables, describeDifferences } from "../support/table-compare.js";
import { deleteTopics } from "../support/topic-reader.js";

const DDL = "CREATE TABLE acks (id bigint PRIMARY KEY, written_by int NOT NULL);";
const CLIENTS = 4;
const cluster = uniqueName("fo");
const prefix = uniqueName("focl");
const databases: TestDatabase[] = [];
let nodes: TestCluster | undefined;
let primary: PrivatePostgres | undefined;

afterAll(async () => {
  await nodes?.stopAll();
  // First: with zero-loss on and no capture, dropping its database would wait for the capture.
  await primary?.destroy();
  for (const db of databases.slice(1)) await db.drop().catch(() => undefined);
  const data = [`${prefix}.${cluster}`, `${prefix}.${cluster}.e1`];
  await deleteTopics(testServices().kafkaBrokers, [
    ...data.flatMap((t) => [t, `${t}.schemas`]),
    `${prefix}.cluster.${cluster}`,
    `${prefix}.cluster.${cluster}.claim.e0`,
    `${prefix}.cluster.${cluster}.claim.e1`,
  ]);
});

describe("diffrelay failover --cluster after kill -9 of the primary", () => {
  it("with zero-loss mode on: the nodes change role, every acknowledged id is on the new primary, the standbys agree", async () => {
    const services = testServices();
    primary = await startPrivatePostgres("failover-cluster");
    await primary.configure({ synchronous_commit: "on" });
    const dbA = await createTestDatabase(primary.url, "fo_a");
    const dbB = await createTestDatabase(services.standbyUrls[0] as string, "fo_b");
    const dbC = await createTestDatabase(services.standbyUrls[1] as string, "fo_c");
    databases.push(dbA, dbB, dbC);
    for (const db of databases) await runSql(db.url, DDL);
    const c = await TestCluster.create({
      name: cluster,
      databases: [
        { name: "a", url: dbA.url },
        { name: "b", url: dbB.url },
        { name: "c", url: dbC.url },
      ],
      brokers: services.kafkaBrokers,
      topicPrefix: prefix,
      tables: ["public.acks"],
    });
    nodes = c;

    c.start("a", ["--initial-primary", "a", "--zero-loss"]);
    await c.waitFor("a", "/primary", 200);
    for (const [name, db] of [
      ["b", dbB],
      ["c", dbC],
    ] as const) {
      const seed = spawnDiffrelay([
        "seed",
        "--source-url",
        dbA.url,
        "--standby-url",
        db.url,
        "--standby-name",
        name,
        "--brokers",
        services.kafkaBrokers.join(","),
        "--topic",
        `${prefix}.${cluster}`,
      ]);
      const seeded = await seed.exited;
      expect(seeded.code, seed.output()).toBe(0);
      c.start(name);
    }
    await c.waitFor("b", "/replica", 200);
    await c.waitFor("c", "/replica", 200);

    const writers = writeUntilDead(dbA.url, CLIENTS);
    await new Promise((r) => setTimeout(r, 4000));
    await primary.kill();
    const acknowledged = await writers;
    // Each commit waits for Kafka: a few dozen per second per client on a shared 2-core machine.
    expect(acknowledged.length).toBeGreaterThan(20);
    await c.waitFor("a", "/healthz", 503);

    const run = spawnDiffrelay(["failover", ...c.clusterArgs(), "--to", "b", "--json"]);
    const exit = await run.exited;
    const line = run
      .output()
      .split("\n")
      .find((l) => l.startsWith('{"outcome"'));
    if (!line) throw new Error(`failover printed no report:\n${run.output()}`);
    const report = JSON.parse(line);
    expect(exit.code, run.output()).toBe(0);
    expect(report).toMatchObject({
      outcome: "promoted",
      cluster,
      fromEpoch: 0,
      epoch: 1,
      newPrimary: "b",
      following: ["c"],
      oldPrimary: { name: "a", reachable: false, lastKnown: { zeroLoss: "required" } },
      mayBeLost: { acknowledgedCommits: "none", slotLagBytes: 0 },
    });

    expect(await c.probe("b", "/primary")).toBe(200);
    const present = new Set(
      await withClient(dbB.url, async (client) =>
        (await client.query<{ id: string }>("SELECT id::text FROM acks")).rows.map((r) => r.id),
      ),
    );
    const missing = acknowledged.filter((id) => !present.has(id));
    console.log(
      `cluster failover, zero-loss on: ${acknowledged.length} commits acknowledged, ${missing.length} missing on the new primary`,
    );
    expect(missing).toEqual([]);

    // The new primary takes writes and c follows it.
    await runSql(dbB.url, "INSERT INTO acks VALUES (-1, 0)");
    const deadline = Date.now() + 60_000;
    while ((await runSql(dbC.url, "SELECT 1 FROM acks WHERE id = -1")).rowCount !== 1) {
      if (Date.now() > deadline)
        throw new Error(`c did not follow b:\n${c.processes.get("c")?.output().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(describeDifferences(await compareTables(dbB.url, dbC.url, ["public.acks"]))).toEqual([]);
  });
});
