// Role changes that never reach `stable` must not lock the cluster: a later epoch's failover supersedes
// them whatever their phase, and every node finishes or abandons its part. And a failover drains every
// node to exactly the old topic's end, even when the old primary comes back and publishes past it.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { partitionOffsets } from "../../src/kafka/topic-admin.js";
import { clusterDataTopics } from "../../src/kafka/topic-names.js";
import { spawnDiffrelay } from "../support/child-process.js";
import { commitSynchronously, HA_LOAD_DDL, HA_LOAD_TABLE, TestCluster } from "../support/cluster-nodes.js";
import { exitWithin, stopProcess } from "../support/replication-pipeline.js";
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
  for (const server of [services.sourceUrl, ...services.standbyUrls.slice(0, 2)]) {
    const db = await createTestDatabase(server, "sup");
    await commitSynchronously(db);
    await runSql(db.url, HA_LOAD_DDL);
    databases.push(db);
  }
  cluster = await TestCluster.create({
    name: uniqueName("sup").replace(/_/g, "-"),
    databases: databases.map((db, i) => ({ name: ["a", "b", "c"][i] as string, url: db.url })),
    brokers: services.kafkaBrokers,
    topicPrefix: "suptest",
    tables: [HA_LOAD_TABLE],
  });
}, 120_000);

afterAll(async () => {
  await cluster?.stopAll();
  for (const db of databases) await db.drop().catch(() => undefined);
});

async function topicEnd(topic: string): Promise<bigint> {
  const admin = cluster.store().kafka.admin();
  await admin.connect();
  try {
    return (await partitionOffsets(admin, topic)).high;
  } finally {
    await admin.disconnect();
  }
}

const readView = () => cluster.view();

function command(name: "switchover" | "failover", to: string, extra: string[] = []) {
  return spawnDiffrelay([name, ...cluster.clusterArgs(), "--to", to, ...extra]);
}

/** A row written on the primary reaches every other live node, and their tables are equal. */
async function expectEqual(primary: string, others: string[]) {
  const primaryUrl = cluster.spec(primary).databaseUrl;
  const row = await runSql<{ id: string }>(
    primaryUrl,
    "INSERT INTO ha_writes (writer, seq) VALUES (-1, (SELECT coalesce(max(seq), 0) + 1 FROM ha_writes WHERE writer = -1)) RETURNING id::text",
  );
  const id = row.rows[0]?.id as string;
  for (const n of others) {
    const deadline = Date.now() + 60_000;
    while (
      !(await runSql(cluster.spec(n).databaseUrl, "SELECT 1 FROM ha_writes WHERE id = $1", [id])).rowCount
    ) {
      if (Date.now() > deadline) throw new Error(`${n} did not get row ${id} from ${primary}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    expect(
      describeDifferences(await compareTables(primaryUrl, cluster.spec(n).databaseUrl, [HA_LOAD_TABLE])),
      `${n} equal to ${primary}`,
    ).toEqual([]);
  }
}

async function expectRoles(primary: string, standbys: string[]) {
  await cluster.waitFor(primary, "/primary", 200, 90_000);
  for (const n of standbys) await cluster.waitFor(n, "/replica?lag=10000", 200, 90_000);
}

async function write(node: string, writer: number, rows: number) {
  await runSql(
    cluster.spec(node).databaseUrl,
    "INSERT INTO ha_writes (writer, seq) SELECT $1, g FROM generate_series(1, $2) g",
    [writer, rows],
  );
}

describe("role changes that do not reach stable", () => {
  it("starts a→(b, c)", async () => {
    cluster.start("a", ["--initial-primary", "a"]);
    await cluster.waitFor("a", "/primary", 200);
    const topic = clusterDataTopics({ topicPrefix: cluster.topicPrefix }, cluster.name, 0).data;
    for (const name of ["b", "c"]) {
      const seed = spawnDiffrelay([
        "seed",
        "--source-url",
        cluster.spec("a").databaseUrl,
        "--standby-url",
        cluster.spec(name).databaseUrl,
        "--standby-name",
        name,
        "--brokers",
        testServices().kafkaBrokers.join(","),
        "--topic",
        topic,
      ]);
      expect((await exitWithin(seed, 60_000)).code, seed.output()).toBe(0);
      cluster.start(name);
    }
    await expectRoles("a", ["b", "c"]);
    await write("a", 1, 200);
  });

  it("the old primary's fence reported after `switchover --timeout` gave up: failover ends the change, the old primary follows", {
    timeout: 240_000,
  }, async () => {
    const frozen = cluster.processes.get("a");
    frozen?.kill("SIGSTOP");
    let thawed = false;
    try {
      const stalled = command("switchover", "b", ["--timeout", "3000"]);
      expect((await exitWithin(stalled, 60_000)).code, stalled.output()).toBe(10);
      expect(stalled.output()).toMatch(/did not fence itself within 3000 ms/);
      frozen?.kill("SIGCONT");
      thawed = true;
      // Thawed, a's node fences: it reads the change, fences and reports the old topic's end (too late for that
      // switchover), or, its lease having lapsed while frozen, it fences for that first and then finds itself a
      // primary left behind (fenced, to rejoin once the cluster has a primary). Either way it never serves again.
      const deadline = Date.now() + 60_000;
      const fenced = async () => {
        const s = await cluster.status("a");
        return s.fencedAt !== null && ["switching", "fenced", "starting"].includes(s.nodeRole) && !s.writable;
      };
      while (!(await fenced())) {
        if (Date.now() > deadline) throw new Error(`a did not fence:\n${frozen?.output().slice(-3000)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    } finally {
      if (!thawed) frozen?.kill("SIGCONT");
    }
    expect((await readView()).state).toMatchObject({ phase: "fencing", primary: "b" });
    const failover = command("failover", "b", ["--json", "--timeout", "60000"]);
    const done = await exitWithin(failover, 120_000);
    expect([0, 8], failover.output()).toContain(done.code);
    await expectRoles("b", ["a", "c"]);
    expect((await readView()).state).toMatchObject({ phase: "stable", primary: "b" });
    await expectEqual("b", ["a", "c"]);
  });

  it("the target dies during `promoting`: failover to another standby ends the change; the target restarted with its own line follows", {
    timeout: 240_000,
  }, async () => {
    await write("b", 2, 200);
    const target = cluster.processes.get("c");
    // Frozen while its last report is fresh: the switchover accepts c, which then never promotes.
    target?.kill("SIGSTOP");
    const stalled = command("switchover", "c", ["--timeout", "5000"]);
    expect((await exitWithin(stalled, 60_000)).code, stalled.output()).toBe(10);
    expect(stalled.output()).toMatch(/phase promoting/);
    target?.kill("SIGKILL");
    await target?.exited;
    expect((await readView()).state).toMatchObject({ phase: "promoting", primary: "c" });

    const failover = command("failover", "a", ["--json", "--timeout", "60000"]);
    const done = await exitWithin(failover, 120_000);
    expect([0, 8], failover.output()).toContain(done.code);
    await expectRoles("a", ["b"]);
    expect((await readView()).state).toMatchObject({ phase: "stable", primary: "a" });
    cluster.start("c");
    await expectRoles("a", ["b", "c"]);
    await expectEqual("a", ["b", "c"]);
  });

  it("failover's exit 4 (the old primary's capture streams on, past the drained end): the new primary serves at phase stable, every node holds exactly the drained end", {
    timeout: 240_000,
  }, async () => {
    // a's node dies; its database and a capture of it (as a standalone process) go on under a write load,
    // so the old topic grows during the whole failover: standbys that apply on pass its drained end.
    const dead = cluster.processes.get("a");
    dead?.kill("SIGKILL");
    await dead?.exited;
    const before = await readView();
    const oldEpoch = before.state?.epoch as number;
    const oldTopic = before.state?.topics.data as string;
    const capture = spawnDiffrelay([
      "capture",
      "--source-url",
      cluster.spec("a").databaseUrl,
      "--brokers",
      testServices().kafkaBrokers.join(","),
      "--topic",
      `${cluster.topicPrefix}.${cluster.name}`,
      "--epoch",
      String(oldEpoch),
      "--tables",
      HA_LOAD_TABLE,
    ]);
    let writing = true;
    const load = (async () => {
      for (let i = 0; writing; i++) await write("a", 100 + i, 20);
    })();
    const startEnd = await topicEnd(oldTopic);
    const deadline = Date.now() + 60_000;
    while ((await topicEnd(oldTopic)) <= startEnd) {
      if (Date.now() > deadline) throw new Error(`the capture of a published nothing:\n${capture.output()}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    const failover = command("failover", "b", ["--json", "--timeout", "60000"]);
    const done = await exitWithin(failover, 120_000);
    writing = false;
    await load;
    await stopProcess(capture);
    expect(done.code, failover.output()).toBe(4);
    expect(failover.output()).toMatch(/published past the drained end/);
    const after = await readView();
    // Soft: what each node holds is checked whatever the phase.
    expect.soft(after.state).toMatchObject({ phase: "stable", primary: "b" });
    const end = after.state?.previous?.drainedEndOffset as string;
    // Exactly the drained end on both: neither applied what a's capture published after it.
    for (const n of ["b", "c"]) {
      const { rows } = await runSql<{ next: string }>(
        cluster.spec(n).databaseUrl,
        "SELECT next_offset::text AS next FROM diffrelay.apply_position WHERE topic = $1",
        [oldTopic],
      );
      expect(rows[0]?.next, `${n}'s position on ${oldTopic}`).toBe(end);
    }
    await expectRoles("b", ["c"]);
    await expectEqual("b", ["c"]);
    // Not locked: the next switchover runs.
    const next = command("switchover", "c", ["--json", "--timeout", "60000"]);
    expect((await exitWithin(next, 120_000)).code, next.output()).toBe(0);
    await expectRoles("c", ["b"]);
  });
});
