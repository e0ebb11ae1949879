import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startPostgres, stopPostgres } from "../../scripts/stack/index.js";
import { type DiffrelayProcess, spawnDiffrelay } from "../support/child-process.js";
import { ReplicationPipeline, stopProcess } from "../support/replication-pipeline.js";
import { testServices, withClient } from "../support/services.js";
import { compareTables, describeDifferences } from "../support/table-compare.js";
import { readDataTopic, transactionsOf } from "../support/topic-reader.js";

const TABLES = ["public.accounts", "public.events", "public.pipeline_marker"];
let pipeline: ReplicationPipeline;
const started: DiffrelayProcess[] = [];

beforeAll(async () => {
  const services = testServices();
  pipeline = await ReplicationPipeline.start({
    sourceServerUrl: services.sourceUrl,
    standbys: [
      { name: "s1", serverUrl: services.standbyUrls[0] as string },
      { name: "s2", serverUrl: services.standbyUrls[1] as string },
    ],
    brokers: services.kafkaBrokers,
    prefix: "promote",
    ddl: "CREATE TABLE accounts (id bigserial PRIMARY KEY, v integer NOT NULL); CREATE TABLE events (n integer, note text);",
  });
}, 120_000);

afterAll(async () => {
  await Promise.all(started.map((p) => stopProcess(p)));
  await pipeline?.stop();
});

/** Inserts until stopped; the primary's death ends it. Returns the ids whose COMMIT was answered. */
async function writeUntilStopped(url: string, stop: () => boolean): Promise<number> {
  let committed = 0;
  await withClient(url, async (client) => {
    client.on("error", () => undefined);
    try {
      while (!stop()) {
        await client.query(
          "WITH a AS (INSERT INTO accounts (v) VALUES (1) RETURNING id) INSERT INTO events SELECT id, 'opened' FROM a",
        );
        committed++;
      }
    } catch {
      // The primary was killed mid-statement: an unanswered commit is decided by the topic, not here.
    }
  }).catch(() => undefined);
  return committed;
}

describe("diffrelay promote", () => {
  it("fails over after kill -9 of the primary: standbys equal, nothing acknowledged lost, replication resumes, no key collides", async () => {
    const services = testServices();
    const stack = services.stack;
    if (!stack) throw new Error("this test kills the primary: it needs the local stack (scripts/stack)");
    const brokers = services.kafkaBrokers.join(",");
    let stop = false;
    const load = writeUntilStopped(pipeline.source.url, () => stop);
    await new Promise((r) => setTimeout(r, 1500));
    await stopPostgres("primary", "kill", { baseDir: stack.baseDir });
    try {
      stop = true;
      expect(await load).toBeGreaterThan(0);
      for (const s of pipeline.standbys.values()) await stopProcess(s.applier);
      await stopProcess(pipeline.capture);

      // What the old capture had acknowledged from Kafka is exactly what the topic holds.
      const { transactions } = transactionsOf(await readDataTopic(services.kafkaBrokers, pipeline.topic));
      const acknowledgedIds = transactions.flatMap((t) =>
        t.changes.flatMap((c) =>
          c.kind === "insert" && c.values.length === 2 ? [c.values[0] as string] : [],
        ),
      );
      expect(acknowledgedIds.length).toBeGreaterThan(0);

      const s1 = pipeline.standby("s1").db.url;
      const s2 = pipeline.standby("s2").db.url;
      const promote = spawnDiffrelay(
        [
          "promote",
          "--standby-name",
          "s1",
          "--standby-url",
          s1,
          "--source-url",
          pipeline.source.url,
          "--standbys",
          `s1=${s1},s2=${s2}`,
          "--brokers",
          brokers,
          "--topic",
          pipeline.topic,
          "--slot",
          pipeline.slot,
          "--publication",
          pipeline.publication,
        ],
        {},
      );
      const exit = await promote.exited;
      expect(exit.code, promote.output()).toBe(0);
      expect(promote.output()).toMatch(
        /promoted s1: it holds every source transaction up to commit LSN \d+\/[0-9A-F]+/,
      );
      expect(promote.output()).toMatch(/old primary unreachable/);

      expect(describeDifferences(await compareTables(s1, s2, TABLES))).toEqual([]);
      const present = await withClient(s1, async (c) =>
        (await c.query<{ id: string }>("SELECT id::text FROM accounts")).rows.map((r) => r.id),
      );
      const missing = acknowledgedIds.filter((id) => !present.includes(id));
      expect(missing).toEqual([]);

      // The new primary streams into the next epoch's topic; s2 follows it without a re-seed.
      const capture = spawnDiffrelay(
        [
          "capture",
          "--source-url",
          s1,
          "--brokers",
          brokers,
          "--topic",
          pipeline.topic,
          "--epoch",
          "1",
          "--slot",
          pipeline.slot,
          "--publication",
          pipeline.publication,
          "--metrics-port",
          "0",
        ],
        {},
      );
      started.push(capture);
      await capture.waitForOutput(/"capture publishing"/, 60_000);
      const apply = spawnDiffrelay(
        [
          "apply",
          "--standby-url",
          s2,
          "--standby-name",
          "s2",
          "--brokers",
          brokers,
          "--topic",
          pipeline.topic,
          "--epoch",
          "1",
          "--metrics-port",
          "0",
        ],
        {},
      );
      started.push(apply);
      await apply.waitForOutput(/applying from the standby's position/, 60_000);

      // Sequence-generated keys on the new primary: none may collide with a row the old primary wrote.
      await withClient(s1, async (c) => {
        for (let i = 0; i < 50; i++) {
          await c.query(
            "WITH a AS (INSERT INTO accounts (v) VALUES (2) RETURNING id) INSERT INTO events SELECT id, 'after failover' FROM a",
          );
        }
        await c.query("INSERT INTO pipeline_marker (id) VALUES (1000000)");
      });
      const deadline = Date.now() + 60_000;
      for (;;) {
        const seen = await withClient(s2, (c) => c.query("SELECT 1 FROM pipeline_marker WHERE id = 1000000"));
        if (seen.rowCount) break;
        if (Date.now() > deadline) throw new Error(`s2 did not follow the new primary:\n${apply.output()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(describeDifferences(await compareTables(s1, s2, TABLES))).toEqual([]);
      const after = await withClient(s2, (c) =>
        c.query("SELECT count(*)::int AS n FROM events WHERE note = 'after failover'"),
      );
      expect(after.rows[0].n).toBe(50);
    } finally {
      await startPostgres("primary", { baseDir: stack.baseDir });
    }
  });

  it("switches over from a live primary: the fence holds against a session that turns read-only off, loses nothing, carries a standalone sequence", async () => {
    const services = testServices();
    const live = await ReplicationPipeline.start({
      sourceServerUrl: services.sourceUrl,
      standbys: [{ name: "t1", serverUrl: services.standbyUrls[0] as string }],
      brokers: services.kafkaBrokers,
      prefix: "switchover",
      ddl: "CREATE TABLE accounts (id bigserial PRIMARY KEY, v integer NOT NULL); CREATE SEQUENCE tickets;",
      // No heartbeat of the capture's during the test: only promote can carry the sequence's position.
      captureArgs: ["--heartbeat-interval-ms", "600000"],
    });
    // Writes as a client that ignores the fence would: each new session turns read-only off first.
    let sneaking = true;
    const sneaked: number[] = [];
    const sneak = (async () => {
      while (sneaking) {
        await withClient(live.source.url, async (c) => {
          c.on("error", () => undefined);
          await c.query("SET default_transaction_read_only = off");
          while (sneaking) {
            const { rows } = await c.query<{ id: string }>(
              "INSERT INTO accounts (v) VALUES (9) RETURNING id",
            );
            sneaked.push(Number(rows[0]?.id));
            await new Promise((r) => setTimeout(r, 20));
          }
        }).catch(() => new Promise((r) => setTimeout(r, 50)));
      }
    })();
    try {
      await withClient(live.source.url, (c) =>
        c.query("INSERT INTO accounts (v) SELECT 1 FROM generate_series(1, 500)"),
      );
      // A sequence no column owns: its values live nowhere in the tables.
      const used = await withClient(live.source.url, async (c) =>
        BigInt(
          (await c.query("SELECT max(nextval('tickets'))::text AS v FROM generate_series(1, 30)")).rows[0].v,
        ),
      );
      await stopProcess(live.standby("t1").applier);
      // The capture keeps running: promote waits for it to make the old primary's last writes durable.
      const t1 = live.standby("t1").db.url;
      const promote = spawnDiffrelay(
        [
          "promote",
          "--standby-name",
          "t1",
          "--standby-url",
          t1,
          "--source-url",
          live.source.url,
          "--brokers",
          services.kafkaBrokers.join(","),
          "--topic",
          live.topic,
          "--slot",
          live.slot,
          "--publication",
          live.publication,
        ],
        {},
      );
      const exit = await promote.exited;
      expect(exit.code, promote.output()).toBe(0);
      expect(promote.output()).toMatch(/old primary fenced \(read-only, accepts no connections\)/);
      // The fence ended the writer's session; a new one, read-only turned off, must not commit.
      await new Promise((r) => setTimeout(r, 500));
      const afterFence = sneaked.length;
      await expect(
        withClient(live.source.url, async (c) => {
          await c.query("SET default_transaction_read_only = off");
          await c.query("INSERT INTO accounts (v) VALUES (3)");
        }),
      ).rejects.toThrow(/not currently accepting connections/);
      expect(sneaked.length).toBe(afterFence);
      sneaking = false;
      await sneak;
      expect(sneaked.length).toBeGreaterThan(0);
      // Everything the old primary committed, the fence-ignoring writer's rows included, is on t1.
      const onT1 = await withClient(t1, async (c) =>
        (await c.query<{ id: string }>("SELECT id::text FROM accounts")).rows.map((r) => Number(r.id)),
      );
      expect(sneaked.filter((id) => !onT1.includes(id))).toEqual([]);
      const onSource = await withClient(services.sourceUrl, async (admin) => {
        await admin.query(`ALTER DATABASE ${live.source.name} ALLOW_CONNECTIONS true`);
        return withClient(
          live.source.url,
          async (c) => (await c.query<{ n: string }>("SELECT count(*)::text AS n FROM accounts")).rows[0]?.n,
        );
      });
      expect(String(onT1.length)).toBe(onSource);
      expect(describeDifferences(await compareTables(live.source.url, t1, ["public.accounts"]))).toEqual([]);
      // The promoted standby does not hand out a ticket the old primary already gave.
      const next = await withClient(t1, async (c) =>
        BigInt((await c.query("SELECT nextval('tickets')::text AS v")).rows[0].v),
      );
      expect(next).toBeGreaterThan(used);
    } finally {
      sneaking = false;
      await sneak;
      await live.stop();
    }
  });
});
