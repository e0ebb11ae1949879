// Acceptance: "each transaction is applied exactly once". Under a steady source load, one applier is killed
// with SIGKILL again and again while it works through a backlog, and restarted each time. Once it has caught
// up, its standby equals the source row for row: a PK-less table would show a duplicate for any insert
// applied twice, and a missing row for any transaction skipped. The other standby's applier is never killed.
import kafkajs from "kafkajs";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReplicationPipeline } from "../support/replication-pipeline.js";
import { runSql, testServices } from "../support/services.js";
import { compareTables, describeDifferences } from "../support/table-compare.js";

const { Kafka, logLevel } = kafkajs;

const WRITERS = 3;
const KILLS = 4;
const TABLES = ["public.events", "public.counters"];

const DDL = `
CREATE TABLE events (writer integer NOT NULL, seq integer NOT NULL, payload text);
CREATE TABLE counters (id integer PRIMARY KEY, hits bigint NOT NULL, last_seq integer NOT NULL);
`;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const randomBetween = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo));

/** Source transactions of 1–20 PK-less inserts plus two keyed updates, until `stop()`. */
async function runWriter(url: string, writer: number, stop: () => boolean, done: { tx: number }) {
  const client = new pg.Client({ connectionString: url });
  // An error surfaces through the pending query; the event alone must not crash the worker.
  client.on("error", () => undefined);
  await client.connect();
  let seq = 0;
  try {
    while (!stop()) {
      const k = randomBetween(1, 21);
      await client.query("BEGIN");
      await client.query(
        "INSERT INTO events SELECT $1, $2 + g, repeat(md5(random()::text), 2) FROM generate_series(1, $3) g",
        [writer, seq, k],
      );
      // Lock order 0 then own row: writers never deadlock.
      await client.query("UPDATE counters SET hits = hits + $1, last_seq = last_seq + 1 WHERE id = 0", [k]);
      await client.query("UPDATE counters SET hits = hits + $2, last_seq = $3 WHERE id = $1", [
        writer,
        k,
        seq + k,
      ]);
      await client.query("COMMIT");
      seq += k;
      done.tx++;
      await sleep(randomBetween(2, 20));
    }
  } finally {
    await client.end();
  }
}

describe("apply: each transaction is applied exactly once", () => {
  let pipeline: ReplicationPipeline;

  beforeAll(async () => {
    const services = testServices();
    expect(services.standbyUrls.length).toBeGreaterThanOrEqual(2);
    pipeline = await ReplicationPipeline.start({
      sourceServerUrl: services.sourceUrl,
      standbys: [
        // Small standby transactions: a kill lands between many commits, and inside open ones.
        { name: "s1", serverUrl: services.standbyUrls[0] as string, applyArgs: ["--apply-max-rows", "50"] },
        { name: "s2", serverUrl: services.standbyUrls[1] as string },
      ],
      brokers: services.kafkaBrokers,
      prefix: "apply_once",
      ddl: DDL,
    });
    await runSql(
      pipeline.source.url,
      `INSERT INTO counters SELECT g, 0, 0 FROM generate_series(0, ${WRITERS}) g`,
    );
    await pipeline.waitForCatchUp();
  });

  afterAll(async () => {
    await pipeline?.stop();
  });

  it("survives repeated kill -9 of an applier mid-batch without applying anything twice or skipping", async () => {
    let stopWriters = false;
    const done = { tx: 0 };
    const writers = Array.from({ length: WRITERS }, (_, i) =>
      runWriter(pipeline.source.url, i + 1, () => stopWriters, done),
    );
    const kills: {
      atNextOffset: string;
      backlogAtKill: string;
      advancedBy: string;
      downMs: number;
      firstProgressMs: number;
    }[] = [];
    let restartedAt = Date.now();
    const admin = new Kafka({
      clientId: "apply-once-test",
      brokers: testServices().kafkaBrokers,
      logLevel: logLevel.NOTHING,
    }).admin();
    await admin.connect();
    try {
      for (let k = 0; k < KILLS; k++) {
        const applier = pipeline.standby("s1").applier;
        // Let it apply: its stored position must move past where this run of it started.
        const startedAt = (await pipeline.position("s1"))?.nextOffset ?? 0n;
        // Measured from the restart (or the test's start): a restarted applier rejoins its consumer group.
        const t0 = restartedAt;
        const deadline = Date.now() + 60_000;
        let now = startedAt;
        while (now <= startedAt) {
          if (Date.now() > deadline) throw new Error(`applier s1 made no progress:\n${applier.output()}`);
          await sleep(20);
          now = (await pipeline.position("s1"))?.nextOffset ?? 0n;
        }
        const firstProgressMs = Date.now() - t0;
        // A random moment soon after it started making progress: while it still works through the
        // backlog the downtime piled up (a caught-up applier drains a backlog within a fraction of a second).
        await sleep(randomBetween(0, 40));
        expect(applier.kill("SIGKILL"), "the applier was still running when killed").toBe(true);
        expect(await applier.exited).toEqual({ code: null, signal: "SIGKILL" });
        const atKill = (await pipeline.position("s1"))?.nextOffset ?? 0n;
        const [partition] = await admin.fetchTopicOffsets(pipeline.topic);
        const backlogAtKill = BigInt(partition?.high ?? "0") - atKill;
        // Down for a while: the load goes on and piles up a backlog for the next run.
        const downMs = randomBetween(200, 1500);
        await sleep(downMs);
        kills.push({
          atNextOffset: atKill.toString(),
          backlogAtKill: backlogAtKill.toString(),
          advancedBy: (atKill - startedAt).toString(),
          downMs,
          firstProgressMs,
        });
        await pipeline.startApplier("s1");
        restartedAt = Date.now();
      }
      // One more stretch of load with the last restart applying.
      await sleep(1000);
    } finally {
      stopWriters = true;
      await Promise.all(writers);
      await admin.disconnect();
    }
    await pipeline.waitForCatchUp();

    const counts = await runSql<{ events: string; dup: string; hits: string }>(
      pipeline.source.url,
      `SELECT (SELECT count(*) FROM events)::text AS events,
              (SELECT count(*) - count(DISTINCT (writer, seq)) FROM events)::text AS dup,
              (SELECT hits FROM counters WHERE id = 0)::text AS hits`,
    );
    const summary: Record<string, unknown> = {
      sourceTransactions: done.tx,
      source: counts.rows[0],
      kills,
    };
    for (const name of ["s1", "s2"]) {
      const comparison = await compareTables(pipeline.source.url, pipeline.standby(name).db.url, TABLES);
      summary[name] = Object.fromEntries(comparison.map((c) => [c.table, c.standbyRows]));
      expect(describeDifferences(comparison), `standby ${name}`).toEqual([]);
      const standbyDup = await runSql<{ dup: string }>(
        pipeline.standby(name).db.url,
        "SELECT (count(*) - count(DISTINCT (writer, seq)))::text AS dup FROM events",
      );
      expect(standbyDup.rows[0]?.dup, `duplicate events on ${name}`).toBe("0");
    }
    console.log(`exactly once: ${JSON.stringify(summary)}`);
    expect(kills).toHaveLength(KILLS);
    // Killed while topic messages were waiting to be applied (the first kill may find it caught up).
    expect(kills.filter((k) => BigInt(k.backlogAtKill) > 0n).length).toBeGreaterThanOrEqual(3);
    expect(counts.rows[0]?.dup).toBe("0");
    expect(Number(counts.rows[0]?.events)).toBe(Number(counts.rows[0]?.hits));
    expect(Number(counts.rows[0]?.events)).toBeGreaterThan(1000);
    // Each restart rejoins the applier's Kafka consumer group, which can wait for the killed member's
    // session to expire (about 30 s each): the budget allows for that.
  }, 360_000);
});
