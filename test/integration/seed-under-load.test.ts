// Seeding under load: a standby seeded from an exported snapshot while the primary keeps writing, then
// handed to the applier, ends up equal to the primary: nothing at the seam between the snapshot and the
// topic is missed or applied twice (the PK-less table's multiset comparison would show either).
import kafkajs from "kafkajs";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DiffrelayProcess, spawnDiffrelay } from "../support/child-process.js";
import { stopProcess, tail } from "../support/replication-pipeline.js";
import {
  createTestDatabase,
  runSql,
  type TestDatabase,
  testServices,
  uniqueName,
} from "../support/services.js";
import { compareTables, describeDifferences } from "../support/table-compare.js";

const { Kafka, logLevel } = kafkajs;

const DDL = `
CREATE TABLE items (id bigint PRIMARY KEY, v text, n integer, doubled integer GENERATED ALWAYS AS (n * 2) STORED);
CREATE TABLE events (a integer, b text);
`;
const TABLES = ["public.items", "public.events"];

describe("seed under load", () => {
  const services = testServices();
  const brokers = services.kafkaBrokers.join(",");
  const topic = uniqueName("seed_topic");
  const slot = uniqueName("seed_slot");
  const publication = uniqueName("seed_pub");
  let source: TestDatabase;
  let standby: TestDatabase;
  let fresh: TestDatabase;
  const processes: DiffrelayProcess[] = [];

  const seedArgs = (db: TestDatabase, name: string, extra: string[] = []) => [
    "seed",
    "--source-url",
    source.url,
    "--standby-url",
    db.url,
    "--standby-name",
    name,
    "--brokers",
    brokers,
    "--topic",
    topic,
    "--slot",
    slot,
    "--publication",
    publication,
    ...extra,
  ];
  const start = (args: string[]) => {
    const p = spawnDiffrelay(args);
    processes.push(p);
    return p;
  };

  beforeAll(async () => {
    source = await createTestDatabase(services.sourceUrl, "seed_src");
    standby = await createTestDatabase(services.standbyUrls[0] as string, "seed_sb");
    fresh = await createTestDatabase(
      services.standbyUrls[1] ?? (services.standbyUrls[0] as string),
      "seed_fresh",
    );
    await runSql(source.url, DDL);
    await runSql(standby.url, DDL);
    await runSql(
      source.url,
      `INSERT INTO items (id, v, n) SELECT g, md5(g::text), g FROM generate_series(1, 50000) g;
       INSERT INTO events SELECT g % 100, 'e' || (g % 7) FROM generate_series(1, 5000) g;
       ANALYZE items; ANALYZE events;`,
    );
  });

  afterAll(async () => {
    await Promise.all(processes.map((p) => stopProcess(p)));
    const admin = new Kafka({
      clientId: "seed-test-cleanup",
      brokers: services.kafkaBrokers,
      logLevel: logLevel.NOTHING,
    }).admin();
    await admin
      .connect()
      .then(() => admin.deleteTopics({ topics: [topic, `${topic}.schemas`], timeout: 10_000 }))
      .catch(() => undefined)
      .finally(() => admin.disconnect().catch(() => undefined));
    await Promise.allSettled([source?.drop(), standby?.drop(), fresh?.drop()]);
  });

  it("refuses while the capture has never run (its slot does not exist)", async () => {
    const seed = start(seedArgs(standby, "sb1"));
    const exit = await seed.exited;
    expect(exit.code, seed.output()).toBe(3);
    expect(seed.output()).toMatch(/slot .* does not exist/);
    const { rows } = await runSql<{ n: string }>(standby.url, "SELECT count(*)::text AS n FROM items");
    expect(rows[0]?.n).toBe("0");
  });

  it("seeds while writes continue, reruns safely, and the applier continues exactly from the snapshot", async () => {
    const capture = start([
      "capture",
      "--source-url",
      source.url,
      "--brokers",
      brokers,
      "--slot",
      slot,
      "--publication",
      publication,
      "--topic",
      topic,
      "--metrics-port",
      "0",
      "--heartbeat-interval-ms",
      "500",
    ]);
    await capture.waitForOutput(/"capture publishing"/, 60_000);

    // The write load: small transactions of every kind on both tables until stopped.
    let writing = true;
    let writes = 0;
    const writer = (async () => {
      const client = new pg.Client({ connectionString: source.url });
      await client.connect();
      try {
        let next = 100_000;
        while (writing) {
          const id = 1 + Math.floor(Math.random() * 50_000);
          await client.query("BEGIN");
          await client.query("UPDATE items SET v = v || 'u', n = n + 1 WHERE id = $1", [id]);
          await client.query("INSERT INTO items (id, v, n) VALUES ($1, 'new', 1)", [next++]);
          await client.query("DELETE FROM items WHERE id = $1", [id + 1]);
          await client.query("INSERT INTO events VALUES ($1, 'load'), ($1, 'load')", [id % 10]);
          await client.query(
            "DELETE FROM events WHERE ctid = (SELECT ctid FROM events WHERE a = $1 LIMIT 1)",
            [(id + 3) % 100],
          );
          await client.query("COMMIT");
          writes++;
        }
      } finally {
        await client.end();
      }
    })();

    try {
      await new Promise((r) => setTimeout(r, 1000));
      // Small ranges so that the 50k-row table is copied as several ctid ranges in parallel.
      const first = start(seedArgs(standby, "sb1", ["--parallel", "3", "--seed-range-rows", "10000"]));
      expect((await first.exited).code, first.output()).toBe(0);
      expect(first.output()).toMatch(/"seed complete"/);
      const ranges = JSON.parse(/(\{"event":"seed complete".*\})/.exec(first.output())?.[1] ?? "{}");
      expect(ranges.tables.find((t: { table: string }) => t.table === "public.items").ranges).toBeGreaterThan(
        1,
      );

      // A second seed over the first: every table is emptied and copied again, the position rewritten.
      const second = start(seedArgs(standby, "sb1", ["--parallel", "2"]));
      expect((await second.exited).code, second.output()).toBe(0);

      const applier = start([
        "apply",
        "--standby-url",
        standby.url,
        "--standby-name",
        "sb1",
        "--brokers",
        brokers,
        "--topic",
        topic,
        "--metrics-port",
        "0",
      ]);
      await applier.waitForOutput(/applying from the standby's position/, 60_000);
      await new Promise((r) => setTimeout(r, 1500));
      writing = false;
      await writer;
      expect(writes).toBeGreaterThan(50);

      // Caught up when equal; poll, since the last writes travel through Kafka.
      const deadline = Date.now() + 90_000;
      let differences: string[] = [];
      for (;;) {
        differences = describeDifferences(await compareTables(source.url, standby.url, TABLES));
        if (differences.length === 0 || Date.now() > deadline) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      expect(differences, tail(applier.output())).toEqual([]);
      const counts = await compareTables(source.url, standby.url, TABLES);
      expect(counts.map((c) => c.standbyRows >= 5000)).toEqual([true, true]);
      // The generated column was computed by the standby, not copied.
      const { rows } = await runSql<{ bad: string }>(
        standby.url,
        "SELECT count(*)::text AS bad FROM items WHERE doubled IS DISTINCT FROM n * 2",
      );
      expect(rows[0]?.bad).toBe("0");
      await stopProcess(applier);
    } finally {
      writing = false;
      await writer;
    }
  });

  it("creates missing tables with --create-schema and copies them", async () => {
    const seed = start(seedArgs(fresh, "fresh1", ["--create-schema"]));
    expect((await seed.exited).code, seed.output()).toBe(0);
    const comparison = await compareTables(source.url, fresh.url, TABLES);
    // No applier runs for this standby and the source is quiet now: it must equal the source already.
    expect(describeDifferences(comparison)).toEqual([]);
    expect(comparison[0]?.standbyRows).toBeGreaterThan(40_000);
    const { rows } = await runSql<{ next_offset: string; last_commit_lsn: string }>(
      fresh.url,
      "SELECT next_offset::text, last_commit_lsn::text FROM diffrelay.apply_position WHERE topic = $1",
      [topic],
    );
    expect(rows).toHaveLength(1);
  });
});
