// Acceptance: kill -9 the capture at random moments under a steady write load, restart it each time, and
// nothing committed is lost: every source transaction reaches the topic, first occurrences in commit order,
// duplicates only as exact repeats of an earlier transaction (same commit LSN, same changes).
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Change } from "../../src/change/change-model.js";
import { formatLsn, type Lsn, parseLsn } from "../../src/change/lsn.js";
import { startCapture, stopCapture, waitForSlotReleased } from "../support/capture-process.js";
import type { DiffrelayProcess } from "../support/child-process.js";
import {
  createTestDatabase,
  runSql,
  type TestDatabase,
  testServices,
  uniqueName,
} from "../support/services.js";
import {
  deleteTopics,
  TopicFollower,
  type TopicTransaction,
  transactionsOf,
} from "../support/topic-reader.js";

const LOAD_MS = 20_000;
const KILLS = 4;

let db: TestDatabase;
let capture: DiffrelayProcess | undefined;
let follower: TopicFollower | undefined;
const slot = uniqueName("cap_kill_slot");
const publication = uniqueName("cap_kill_pub");
const topic = uniqueName("cap_kill_topic");

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const randomBetween = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo));

function options() {
  return { sourceUrl: db.url, brokers: testServices().kafkaBrokers, slot, publication, topic };
}

beforeAll(async () => {
  db = await createTestDatabase(testServices().sourceUrl, "cap_kill");
  await runSql(db.url, "CREATE TABLE ticks (seq bigint PRIMARY KEY, pad text NOT NULL)");
  capture = await startCapture(options());
  follower = await TopicFollower.start(testServices().kafkaBrokers, topic, "data");
});

afterAll(async () => {
  await follower?.stop();
  await stopCapture(capture);
  await db?.drop();
  await deleteTopics(testServices().kafkaBrokers, [topic, `${topic}.schemas`]);
});

describe("diffrelay capture: crash safety", () => {
  it("loses no committed transaction across repeated kill -9 and restart under load", async () => {
    const reader = follower as TopicFollower;
    const writer = new pg.Client({ connectionString: db.url });
    writer.on("error", () => undefined); // a failed query rejects; the socket error itself is not news
    await writer.connect();
    let committed = 0;
    let stopWriting = false;
    const startedAt = Date.now();
    // One committed transaction per row, as fast as one connection goes; seq is the commit order.
    let loadError: unknown;
    const load = (async () => {
      while (!stopWriting && loadError === undefined) {
        const seq = committed + 1;
        await writer.query("INSERT INTO ticks VALUES ($1, md5($2))", [seq, String(seq)]);
        committed = seq;
      }
    })().catch((err) => {
      loadError = err;
    });
    const loadHealthy = () => {
      if (loadError !== undefined) throw loadError;
    };

    const kills: { atMs: number; committed: number; topicLsn: string }[] = [];
    let lastLsn: Lsn;
    let loadSeconds: number;
    try {
      try {
        for (let k = 0; k < KILLS; k++) {
          // Let the running capture publish for a random while, then kill it without warning.
          loadHealthy();
          const publishedBefore = reader.lastFinalCommitLsn;
          await sleep(randomBetween(1_000, 3_500));
          // Only kill a capture that has published part of the load, so each kill interrupts real work.
          await reader.waitForCommitLsn(publishedBefore + 1n, 30_000);
          const victim = capture as DiffrelayProcess;
          expect(victim.kill("SIGKILL")).toBe(true);
          const exit = await victim.exited;
          expect(exit.signal).toBe("SIGKILL");
          capture = undefined;
          kills.push({
            atMs: Date.now() - startedAt,
            committed,
            topicLsn: formatLsn(reader.lastFinalCommitLsn),
          });
          // A new capture may only take the slot once the dead one's walsender has let go of it.
          await waitForSlotReleased(db.url, slot);
          capture = await startCapture(options());
        }
        while (Date.now() - startedAt < LOAD_MS) {
          loadHealthy();
          await sleep(100);
        }
      } finally {
        stopWriting = true;
        await load;
      }
      loadHealthy();
      // A last transaction whose commit LSN we bound from below: everything before it must be on the topic.
      await writer.query("BEGIN");
      await writer.query("INSERT INTO ticks VALUES ($1, md5($2))", [committed + 1, String(committed + 1)]);
      const { rows } = await writer.query<{ lsn: string }>("SELECT pg_current_wal_insert_lsn()::text AS lsn");
      await writer.query("COMMIT");
      committed += 1;
      lastLsn = parseLsn(rows[0]?.lsn as string);
      loadSeconds = (Date.now() - startedAt) / 1000;
    } finally {
      await writer.end().catch(() => undefined);
    }
    const sourceCount = await runSql<{ n: string }>(db.url, "SELECT count(*)::text AS n FROM ticks");
    expect(Number(sourceCount.rows[0]?.n)).toBe(committed);

    await reader.waitForCommitLsn(lastLsn, 120_000);
    await reader.waitForEnd();
    const { transactions, abandoned, incomplete } = transactionsOf(reader.dataRecords());
    expect(incomplete).toBeUndefined();

    // First occurrence of each commit LSN, in topic order; later ones must repeat it exactly.
    const first = new Map<Lsn, TopicTransaction>();
    const firsts: TopicTransaction[] = [];
    let duplicates = 0;
    for (const t of transactions) {
      const seen = first.get(t.commitLsn);
      if (seen) {
        duplicates++;
        expect({ xid: t.xid, time: t.commitTimeMicros, changes: t.changes }).toEqual({
          xid: seen.xid,
          time: seen.commitTimeMicros,
          changes: seen.changes,
        });
        continue;
      }
      first.set(t.commitLsn, t);
      firsts.push(t);
    }
    for (let i = 1; i < firsts.length; i++) {
      expect((firsts[i] as TopicTransaction).commitLsn).toBeGreaterThan(
        (firsts[i - 1] as TopicTransaction).commitLsn,
      );
    }
    // Each source transaction inserted one row; its seq is its commit order.
    const seqs = firsts.map((t) => {
      expect(t.changes).toHaveLength(1);
      const change = t.changes[0] as Change;
      if (change.kind !== "insert") throw new Error(`unexpected ${change.kind} at ${formatLsn(t.commitLsn)}`);
      return Number(change.values[0]);
    });
    const missing = committed - new Set(seqs).size;
    expect(missing).toBe(0);
    expect(seqs).toEqual(Array.from({ length: committed }, (_, i) => i + 1));

    console.log(
      `kill -9 under load: ${kills.length} kills (${kills.map((k) => `at ${(k.atMs / 1000).toFixed(1)} s, ${k.committed} committed, topic at ${k.topicLsn}`).join("; ")}), ` +
        `${committed} transactions committed in ${loadSeconds.toFixed(1)} s ` +
        `(${Math.round(committed / loadSeconds)}/s), ${firsts.length} found, ${committed - firsts.length} missing, ` +
        `${duplicates} duplicates, ${abandoned.length} abandoned partial transactions, ` +
        `${reader.records.length} messages on the topic`,
    );
    expect(kills).toHaveLength(KILLS);
  });
});
