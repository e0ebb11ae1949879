// Zero-loss mode (issue 13, item 7): a commit on the primary returns only once its changes are durable in
// Kafka. The primary is a private cluster (synchronous_standby_names is server-wide). Checked: the capture
// refuses while synchronous_commit would not wait; it sets synchronous_standby_names itself; every commit
// that returned is already below the topic's end at that moment; while the broker does not answer (SIGSTOP)
// a commit does not return, and after it answers (SIGCONT) it returns and is in the topic; while the
// capture is stopped commits wait, and a capture started meanwhile gets going and releases them.
import kafkajs from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { kafkaPid } from "../../scripts/stack/kafka-broker.js";
import { readState } from "../../scripts/stack/stack-state.js";
import { captureArgs, startCapture, stopCapture } from "../support/capture-process.js";
import { type DiffrelayProcess, spawnDiffrelay } from "../support/child-process.js";
import { type PrivatePostgres, startPrivatePostgres } from "../support/private-postgres.js";
import { exitWithin } from "../support/replication-pipeline.js";
import { runSql, testServices, uniqueName } from "../support/services.js";
import { deleteTopics, TopicFollower, transactionsOf } from "../support/topic-reader.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const slot = uniqueName("zl_slot");
const publication = uniqueName("zl_pub");
const topic = uniqueName("zl_topic");

let primary: PrivatePostgres;
let follower: TopicFollower;
let capture: DiffrelayProcess | undefined;
let pausedBroker: number | undefined;

function options() {
  return {
    sourceUrl: primary.url,
    brokers: testServices().kafkaBrokers,
    slot,
    publication,
    topic,
    extraArgs: ["--zero-loss"],
  };
}

/** The topic's end offset now, as the broker says. */
async function topicEnd(): Promise<bigint> {
  const admin = new kafkajs.Kafka({
    brokers: testServices().kafkaBrokers,
    logLevel: kafkajs.logLevel.NOTHING,
  }).admin();
  await admin.connect();
  try {
    return BigInt((await admin.fetchTopicOffsets(topic))[0]?.high ?? "0");
  } finally {
    await admin.disconnect();
  }
}

/** Ids inserted into acks by transactions whose messages are all below `end`. */
async function idsBelow(end: bigint): Promise<Set<string>> {
  const deadline = Date.now() + 30_000;
  while (follower.records.length === 0 || (follower.records.at(-1)?.offset ?? -1n) < end - 1n) {
    if (Date.now() > deadline) throw new Error(`${topic} not read up to offset ${end}`);
    await sleep(20);
  }
  const records = follower.dataRecords().filter((r) => r.offset < end);
  return new Set(
    transactionsOf(records).transactions.flatMap((t) =>
      t.changes.flatMap((c) => (c.kind === "insert" ? [String(c.values[0])] : [])),
    ),
  );
}

/** Inserts one id; resolves with the time the commit took, once it returned. */
async function commit(id: number): Promise<number> {
  const started = Date.now();
  await runSql(primary.url, "INSERT INTO acks VALUES ($1)", [id]);
  return Date.now() - started;
}

/** Resolves true if the promise settles within ms. */
async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  return Promise.race([p.then(() => true), sleep(ms).then(() => false)]);
}

beforeAll(async () => {
  primary = await startPrivatePostgres("zero-loss");
  await runSql(primary.url, "CREATE TABLE acks (id bigint PRIMARY KEY)");
});

afterAll(async () => {
  if (pausedBroker !== undefined) process.kill(pausedBroker, "SIGCONT");
  await follower?.stop();
  await stopCapture(capture);
  await primary?.destroy();
  await deleteTopics(testServices().kafkaBrokers, [topic, `${topic}.schemas`]);
});

describe("zero-loss mode", () => {
  it("refuses (exit 3) while the source's synchronous_commit would not wait, naming the setting", async () => {
    // The stack's clusters run with synchronous_commit = off.
    const refused = spawnDiffrelay(captureArgs(options()));
    const exit = await exitWithin(refused, 60_000);
    expect(exit.code, refused.output()).toBe(3);
    expect(refused.output()).toMatch(/zero-loss mode: the source's synchronous_commit is off/);
    const { rows } = await runSql<{ names: string }>(
      primary.url,
      "SELECT current_setting('synchronous_standby_names') AS names",
    );
    expect(rows[0]?.names).toBe("");
  });

  it("makes every commit wait until Kafka holds it", async () => {
    await primary.configure({ synchronous_commit: "on" });
    capture = await startCapture(options());
    expect(capture.output()).toMatch(/synchronous_standby_names set \(ALTER SYSTEM\)/);
    const { rows } = await runSql<{ names: string }>(
      primary.url,
      "SELECT current_setting('synchronous_standby_names') AS names",
    );
    expect(rows[0]?.names).toBe(`"${slot}"`);
    follower = await TopicFollower.start(testServices().kafkaBrokers, topic, "data");

    // Each commit that returned is below the topic's end read right after it.
    for (let id = 1; id <= 20; id++) {
      await commit(id);
      const end = await topicEnd();
      expect((await idsBelow(end)).has(String(id)), `id ${id} returned before Kafka held it`).toBe(true);
    }

    // The setting is server-wide: a commit in another database waits for the capture too, and is released
    // by the keepalive that follows it (nothing of it is published).
    const otherDb = primary.url.replace(/\/app$/, "/postgres");
    await runSql(otherDb, "CREATE TABLE IF NOT EXISTS elsewhere (id int)");
    const elsewhere = runSql(otherDb, "INSERT INTO elsewhere VALUES (1)");
    expect(await settlesWithin(elsewhere, 10_000), "a commit in another database did not return").toBe(true);

    // The broker stops answering: a commit waits (in SyncRep) and returns once it answers again.
    const stack = testServices().stack;
    if (!stack) throw new Error("this test pauses the broker: it needs the local stack (scripts/stack)");
    const broker = kafkaPid(
      readState(stack.baseDir).kafka as NonNullable<ReturnType<typeof readState>["kafka"]>,
    );
    if (broker === undefined) throw new Error("the stack's broker is not running");
    process.kill(broker, "SIGSTOP");
    pausedBroker = broker;
    const waiting = commit(21);
    try {
      expect(await settlesWithin(waiting, 3000), "the commit returned while Kafka was not answering").toBe(
        false,
      );
      const { rows: waits } = await runSql<{ n: number }>(
        primary.url,
        "SELECT count(*)::int AS n FROM pg_stat_activity WHERE wait_event = 'SyncRep'",
      );
      expect(waits[0]?.n).toBe(1);
    } finally {
      process.kill(broker, "SIGCONT");
      pausedBroker = undefined;
    }
    expect(await settlesWithin(waiting, 60_000), "the commit did not return after Kafka came back").toBe(
      true,
    );
    expect((await idsBelow(await topicEnd())).has("21")).toBe(true);

    // The capture stops: commits wait; a capture started meanwhile sets up (its own writes do not wait) and
    // releases them.
    await stopCapture(capture);
    const whileStopped = commit(22);
    expect(await settlesWithin(whileStopped, 2000), "a commit returned while no capture ran").toBe(false);
    capture = await startCapture(options());
    expect(
      await settlesWithin(whileStopped, 30_000),
      "the restarted capture did not release the commit",
    ).toBe(true);
    expect((await idsBelow(await topicEnd())).has("22")).toBe(true);
  });
});
