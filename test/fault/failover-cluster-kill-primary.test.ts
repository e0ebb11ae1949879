// Failover of an HA cluster (issue 13, items 4 and 7): three `diffrelay node` processes, the primary's on a
// private cluster with zero-loss mode on. kill -9 of the primary's postmaster under a write load whose
// clients log every id whose COMMIT returned, then `diffrelay failover --cluster … --to b`: it claims the
// next epoch, the standby nodes drain and change roles, and every acknowledged id is on the new primary,
// which accepts writes (/primary 200), while the other standby follows it and holds the same rows.
import { afterAll, describe, expect, it } from "vitest";
import { freePort } from "../../scripts/stack/free-port.js";
import { type DiffrelayProcess, spawnDiffrelay } from "../support/child-process.js";
import { type PrivatePostgres, startPrivatePostgres } from "../support/private-postgres.js";
import { stopProcess } from "../support/replication-pipeline.js";
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
const nodes = new Map<string, { proc: DiffrelayProcess; api: string; db: TestDatabase }>();
let primary: PrivatePostgres | undefined;

afterAll(async () => {
  await Promise.all([...nodes.values()].map((n) => stopProcess(n.proc)));
  for (const n of nodes.values()) await n.db.drop().catch(() => undefined);
  await primary?.destroy();
  const topics = [0, 1].flatMap((e) => {
    const data = e === 0 ? `${prefix}.${cluster}` : `${prefix}.${cluster}.e${e}`;
    return [data, `${data}.schemas`];
  });
  await deleteTopics(testServices().kafkaBrokers, [
    ...topics,
    `${prefix}.cluster.${cluster}`,
    `${prefix}.cluster.${cluster}.claim.e0`,
    `${prefix}.cluster.${cluster}.claim.e1`,
  ]);
});

async function waitFor(what: string, probe: () => Promise<boolean>, timeoutMs = 90_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await probe().catch(() => false))) {
    if (Date.now() > deadline) {
      const outputs = [...nodes.entries()].map(([n, x]) => `--- node ${n}:\n${x.proc.output().slice(-3000)}`);
      throw new Error(`timed out waiting for ${what}\n${outputs.join("\n")}`);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
}

const answers = async (url: string) =>
  (await fetch(url, { signal: AbortSignal.timeout(2000) })).status === 200;

async function startNode(name: string, db: TestDatabase, apis: Map<string, string>, extra: string[]) {
  const api = apis.get(name) as string;
  const proc = spawnDiffrelay([
    "node",
    "--cluster",
    cluster,
    "--members",
    [...apis.entries()].map(([n, u]) => `${n}=${u}`).join(","),
    "--node-name",
    name,
    "--database-url",
    db.url,
    "--metrics-port",
    new URL(api).port,
    "--brokers",
    testServices().kafkaBrokers.join(","),
    "--topic-prefix",
    prefix,
    ...extra,
  ]);
  nodes.set(name, { proc, api, db });
}

async function writeUntilDead(url: string, client: number): Promise<string[]> {
  const acknowledged: string[] = [];
  await withClient(url, async (c) => {
    c.on("error", () => undefined);
    try {
      for (let id = client; ; id += CLIENTS) {
        await c.query("INSERT INTO acks (id, written_by) VALUES ($1, $2)", [id, client]);
        acknowledged.push(String(id));
      }
    } catch {
      // The primary was killed: a commit that did not return is not in the log.
    }
  }).catch(() => undefined);
  return acknowledged;
}

describe("diffrelay failover --cluster after kill -9 of the primary", () => {
  it("with zero-loss mode on: the nodes change role, every acknowledged id is on the new primary, the standbys agree", async () => {
    const services = testServices();
    primary = await startPrivatePostgres("failover-cluster");
    await primary.configure({ synchronous_commit: "on" });
    const dbA = await createTestDatabase(primary.url, "fo_a");
    const dbB = await createTestDatabase(services.standbyUrls[0] as string, "fo_b");
    const dbC = await createTestDatabase(services.standbyUrls[1] as string, "fo_c");
    for (const db of [dbA, dbB, dbC]) await runSql(db.url, DDL);
    const apis = new Map<string, string>();
    for (const n of ["a", "b", "c"]) apis.set(n, `http://127.0.0.1:${await freePort()}`);

    await startNode("a", dbA, apis, ["--initial-primary", "a", "--zero-loss"]);
    await waitFor("a to be the writable primary", () => answers(`${apis.get("a")}/primary`));
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
      await startNode(name, db, apis, []);
    }
    await waitFor(
      "b and c to be replicas",
      async () => (await answers(`${apis.get("b")}/replica`)) && (await answers(`${apis.get("c")}/replica`)),
    );

    const writers = Array.from({ length: CLIENTS }, (_, i) => writeUntilDead(dbA.url, i + 1));
    await new Promise((r) => setTimeout(r, 4000));
    await primary.kill();
    const acknowledged = (await Promise.all(writers)).flat();
    // Each commit waits for Kafka: a few dozen per second per client on a shared 2-core machine.
    expect(acknowledged.length).toBeGreaterThan(20);
    await waitFor(
      "a's node to report its capture down",
      async () => !(await answers(`${apis.get("a")}/healthz`)),
    );

    const run = spawnDiffrelay([
      "failover",
      "--cluster",
      cluster,
      "--to",
      "b",
      "--brokers",
      services.kafkaBrokers.join(","),
      "--topic-prefix",
      prefix,
      "--json",
    ]);
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

    expect(await answers(`${apis.get("b")}/primary`)).toBe(true);
    const present = new Set(
      await withClient(dbB.url, async (c) =>
        (await c.query<{ id: string }>("SELECT id::text FROM acks")).rows.map((r) => r.id),
      ),
    );
    const missing = acknowledged.filter((id) => !present.has(id));
    console.log(
      `cluster failover, zero-loss on: ${acknowledged.length} commits acknowledged, ${missing.length} missing on the new primary`,
    );
    expect(missing).toEqual([]);

    // The new primary takes writes and c follows it.
    await runSql(dbB.url, "INSERT INTO acks VALUES (-1, 0)");
    await waitFor(
      "c to follow b",
      async () => (await runSql(dbC.url, "SELECT 1 FROM acks WHERE id = -1")).rowCount === 1,
    );
    expect(describeDifferences(await compareTables(dbB.url, dbC.url, ["public.acks"]))).toEqual([]);
  });
});
