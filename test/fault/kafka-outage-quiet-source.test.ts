// Fault (issue 12, item 1): a transaction committed while Kafka is unreachable is never lost. The published
// database stays quiet after it, but another database on the same server keeps writing, so the walsender
// sends keepalives whose WAL end moves past the unpublished transaction. The capture's heartbeat is set to an
// hour, so no message from the published database arrives to reveal the failed send: only the publisher
// itself can end the session. The slot's confirmed_flush_lsn must never pass the transaction's commit, the
// capture must notice the failure on its own, and once the broker is back the transaction must reach the topic.
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startKafka, stopKafka } from "../../scripts/stack/index.js";
import { formatLsn, type Lsn, parseLsn } from "../../src/change/lsn.js";
import { startCapture, stopCapture } from "../support/capture-process.js";
import type { DiffrelayProcess } from "../support/child-process.js";
import { type FaultStack, requireStack, restoreStack } from "../support/fault-stack.js";
import {
  createTestDatabase,
  runSql,
  type TestDatabase,
  testServices,
  uniqueName,
} from "../support/services.js";
import { deleteTopics, TopicFollower, transactionsOf } from "../support/topic-reader.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** kafkajs's retry budget in createKafka (8 retries, 200 ms doubling to 5 s) is about 21 s; leave room. */
const SEND_FAILS_WITHIN_MS = 60_000;
/** Keepalives keep arriving this long after the capture noticed the failure (more failed resends included). */
const KEEPALIVES_AFTER_FAILURE_MS = 30_000;

let stack: FaultStack;
let published: TestDatabase;
let other: TestDatabase;
let capture: DiffrelayProcess | undefined;
const slot = uniqueName("quiet_slot");
const publication = uniqueName("quiet_pub");
const topic = uniqueName("quiet_topic");

async function confirmedFlush(): Promise<Lsn> {
  const { rows } = await runSql<{ lsn: string | null }>(
    published.url,
    "SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1",
    [slot],
  );
  const lsn = rows[0]?.lsn;
  if (!lsn) throw new Error(`slot ${slot} has no confirmed_flush_lsn`);
  return parseLsn(lsn);
}

beforeAll(async () => {
  stack = requireStack(testServices());
  published = await createTestDatabase(testServices().sourceUrl, "quiet_pub");
  other = await createTestDatabase(testServices().sourceUrl, "quiet_other");
  await runSql(published.url, "CREATE TABLE orders (id int PRIMARY KEY, note text NOT NULL)");
  await runSql(other.url, "CREATE TABLE noise (id bigserial PRIMARY KEY, at timestamptz DEFAULT now())");
  capture = await startCapture({
    sourceUrl: published.url,
    brokers: testServices().kafkaBrokers,
    slot,
    publication,
    topic,
    // No heartbeat message from the published database may come along to reveal the failure.
    extraArgs: ["--heartbeat-interval-ms", "3600000"],
  });
});

afterAll(async () => {
  await restoreStack(stack);
  await stopCapture(capture);
  await published?.drop();
  await other?.drop();
  await deleteTopics(testServices().kafkaBrokers, [topic, `${topic}.schemas`]);
});

describe("fault: Kafka unreachable while only another database writes", () => {
  it("never confirms the slot past the unpublished transaction, ends the session itself, and publishes it after the broker returns", async () => {
    const brokers = testServices().kafkaBrokers;
    const proc = capture as DiffrelayProcess;

    // The pipeline works, and the schema of `orders` is on the schema topic before the outage.
    await runSql(published.url, "INSERT INTO orders VALUES (1, 'before the outage')");
    const before = await TopicFollower.start(brokers, topic, "data");
    try {
      await before.waitForCommitLsn(0n, 60_000);
    } finally {
      await before.stop();
    }
    const confirmedBefore = await confirmedFlush();

    await stopKafka("kill", stack);
    const outageStartedAt = Date.now();
    const outputMark = proc.output().length;

    // The transaction Kafka cannot take. Its commit record starts after `beforeCommit`, before `afterCommit`.
    const beforeCommit = parseLsn(
      (await runSql<{ lsn: string }>(published.url, "SELECT pg_current_wal_insert_lsn()::text AS lsn"))
        .rows[0]?.lsn as string,
    );
    await runSql(published.url, "INSERT INTO orders VALUES (2, 'committed while Kafka is away')");
    const { rows } = await runSql<{ lsn: string }>(
      published.url,
      "SELECT pg_current_wal_insert_lsn()::text AS lsn",
    );
    const afterCommit = parseLsn(rows[0]?.lsn as string);
    expect(afterCommit, "the transaction wrote WAL").toBeGreaterThan(beforeCommit);

    // Another database writes all along: keepalives with an advancing WAL end reach the capture.
    const noise = new pg.Client({ connectionString: other.url });
    noise.on("error", () => undefined);
    await noise.connect();
    let noiseCommits = 0;
    let stopNoise = false;
    const noiseLoop = (async () => {
      while (!stopNoise) {
        await noise.query("INSERT INTO noise DEFAULT VALUES");
        noiseCommits++;
        await sleep(20);
      }
    })();

    let maxConfirmed = confirmedBefore;
    let samples = 0;
    const sample = async () => {
      const lsn = await confirmedFlush();
      samples++;
      if (lsn > maxConfirmed) maxConfirmed = lsn;
    };
    const pastCommit = () => maxConfirmed >= afterCommit;

    let noticedAfterMs: number | null = null;
    const noticed = () => /capture session ended; reconnecting/.test(proc.output().slice(outputMark));
    try {
      // Until the capture ends its session on its own (after the client's retries), or the slot is already gone past.
      while (Date.now() - outageStartedAt < SEND_FAILS_WITHIN_MS && !pastCommit()) {
        await sample();
        if (noticed()) {
          noticedAfterMs = Date.now() - outageStartedAt;
          break;
        }
        await sleep(200);
      }
      // Keepalives go on arriving after the failure, through the capture's resends from the slot.
      const until = Date.now() + KEEPALIVES_AFTER_FAILURE_MS;
      while (Date.now() < until && !pastCommit()) {
        await sample();
        await sleep(200);
      }
    } finally {
      stopNoise = true;
      await noiseLoop.catch(() => undefined);
      await noise.end().catch(() => undefined);
    }
    const outageMs = Date.now() - outageStartedAt;
    console.log(
      `Kafka down ${(outageMs / 1000).toFixed(1)} s; ${noiseCommits} commits in the other database; ` +
        `${samples} samples of confirmed_flush_lsn: before ${formatLsn(confirmedBefore)}, highest ${formatLsn(maxConfirmed)}; ` +
        `the unpublished commit ends before ${formatLsn(afterCommit)}; ` +
        `session ended ${noticedAfterMs === null ? "never" : `after ${(noticedAfterMs / 1000).toFixed(1)} s`}`,
    );
    expect(noiseCommits, "the other database wrote during the outage").toBeGreaterThan(100);
    // Nothing after the unpublished transaction was acknowledged by Kafka, so the slot may not pass it.
    expect(
      maxConfirmed,
      `slot ${slot} confirmed ${formatLsn(maxConfirmed)}, past the unpublished commit (before ${formatLsn(afterCommit)})`,
    ).toBeLessThan(afterCommit);
    // The failed send ended the session by itself: no new message had to arrive first.
    expect(noticedAfterMs, "the capture ended its session after the failed send").not.toBeNull();

    await startKafka(stack);
    const after = await TopicFollower.start(brokers, topic, "data");
    try {
      await after.waitForCommitLsn(beforeCommit, 180_000);
      await after.waitForEnd();
      const { transactions } = transactionsOf(after.dataRecords());
      const lost = transactions.find((t) =>
        t.changes.some((c) => c.kind === "insert" && c.values[0] === "2"),
      );
      expect(lost, "the transaction committed during the outage is on the topic").toBeDefined();
      // Exactly: the slot never passed the start of its commit record, where PostgreSQL resumes decoding.
      expect(maxConfirmed).toBeLessThanOrEqual((lost as { commitLsn: Lsn }).commitLsn);
      const ids = transactions.flatMap((t) =>
        t.changes.flatMap((c) => (c.kind === "insert" ? [c.values[0]] : [])),
      );
      expect(new Set(ids)).toEqual(new Set(["1", "2"]));
    } finally {
      await after.stop();
    }
  }, 420_000);
});
