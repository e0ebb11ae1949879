// Issue 12, item 3: two capture sessions never interleave. A capture process is replaced by a new one (a new
// capture id); then a message of the old process lands late in the topic, written with the real encoder: a
// whole transaction with a commit LSN above anything the source has. Applied, it would add a row the source
// never had and move the standby's position past every later transaction. The applier skips it, says so, and
// the standby stays equal to the source.
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import kafkajs from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { InsertChange } from "../../src/change/change-model.js";
import {
  type CaptureSessionId,
  DataMessageBuilder,
  type DecodedDataMessage,
} from "../../src/wire/data-message.js";
import { ReplicationPipeline, stopProcess } from "../support/replication-pipeline.js";
import { runSql, testServices } from "../support/services.js";
import { compareTables, describeDifferences } from "../support/table-compare.js";
import { readDataTopic } from "../support/topic-reader.js";

const { Kafka, logLevel } = kafkajs;

const CLOCK_BEHIND = resolve(fileURLToPath(import.meta.url), "..", "..", "support", "clock-behind.mjs");

/** Appends a message of `session` to the topic, as a capture that ended could still do: one transaction. */
async function publishLate(
  brokers: string[],
  topic: string,
  like: DecodedDataMessage,
  session: CaptureSessionId,
  values: string[],
): Promise<void> {
  const insert = like.chunks.flatMap((c) => c.changes).find((c) => c.kind === "insert") as InsertChange;
  const stale = new DataMessageBuilder(like.envelope, session);
  stale.beginTransaction({
    commitLsn: 0x7fff_0000_0000_0000n,
    commitTimeMicros: BigInt(Date.now()) * 1000n,
    xid: 4242,
    chunk: 0,
    finalChunk: true,
  });
  stale.addChange({ kind: "insert", relation: insert.relation, values });
  const producer = new Kafka({ clientId: "stale-session", brokers, logLevel: logLevel.NOTHING }).producer();
  await producer.connect();
  try {
    await producer.send({ topic, acks: -1, messages: [{ value: stale.finish() }] });
  } finally {
    await producer.disconnect();
  }
}

describe("apply: a stale capture session's late message", () => {
  let pipeline: ReplicationPipeline;

  beforeAll(async () => {
    const services = testServices();
    pipeline = await ReplicationPipeline.start({
      sourceServerUrl: services.sourceUrl,
      standbys: [{ name: "s1", serverUrl: services.standbyUrls[0] as string }],
      brokers: services.kafkaBrokers,
      prefix: "stale_session",
      ddl: "CREATE TABLE items (id int PRIMARY KEY, v text NOT NULL);",
    });
  }, 120_000);

  afterAll(async () => {
    await pipeline?.stop();
  });

  /** Inserts one more row at the source; once the standby has caught up, it equals the source with `rows` rows. */
  async function expectEqualAfter(values: string, rows: number): Promise<void> {
    await runSql(pipeline.source.url, `INSERT INTO items VALUES ${values}`);
    await pipeline.waitForCatchUp();
    const comparison = await compareTables(pipeline.source.url, pipeline.standby("s1").db.url, [
      "public.items",
    ]);
    expect(describeDifferences(comparison)).toEqual([]);
    expect(comparison[0]?.standbyRows).toBe(rows);
  }

  it("is skipped whole, and the standby stays equal to the source", { timeout: 120_000 }, async () => {
    const { brokers } = pipeline.options;
    await runSql(pipeline.source.url, "INSERT INTO items VALUES (1, 'first capture')");
    await pipeline.waitForCatchUp();
    const records = await readDataTopic(brokers, pipeline.topic);
    const old = records.find((r) =>
      r.message.chunks.some((c) =>
        c.changes.some((ch) => ch.kind === "insert" && ch.values[1] === "first capture"),
      ),
    );
    expect(old?.message.session).not.toBeNull();

    // A new capture process: a newer session, which publishes before the old one's late message lands.
    await stopProcess(pipeline.capture);
    await pipeline.spawnCapture().waitForOutput(/"capture publishing"/, 60_000);
    await runSql(pipeline.source.url, "INSERT INTO items VALUES (2, 'second capture')");
    await pipeline.waitForCatchUp();

    const message = old?.message as DecodedDataMessage;
    await publishLate(brokers, pipeline.topic, message, message.session as CaptureSessionId, [
      "999",
      "stale session",
    ]);

    await expectEqualAfter("(3, 'after the late message')", 3);
    expect(pipeline.standby("s1").applier.output()).toMatch(
      /skipped: it comes from capture [0-9a-f]{16} session 1/,
    );
  });

  it("a capture started on a host whose clock stepped back is applied; the capture before it stays stale", {
    timeout: 180_000,
  }, async () => {
    const { brokers } = pipeline.options;
    const previous = (await readDataTopic(brokers, pipeline.topic)).find((r) =>
      r.message.chunks.some((c) =>
        c.changes.some((ch) => ch.kind === "insert" && ch.values[1] === "after the late message"),
      ),
    )?.message as DecodedDataMessage;
    expect(previous.session).not.toBeNull();

    // Restarted an hour "earlier" by its clock than the capture before it.
    await stopProcess(pipeline.capture);
    await pipeline
      .spawnCapture([], {
        NODE_OPTIONS: `--import ${CLOCK_BEHIND}`,
        DIFFRELAY_TEST_CLOCK_BEHIND_MS: String(3_600_000),
      })
      .waitForOutput(/"capture publishing"/, 60_000);
    await runSql(pipeline.source.url, "INSERT INTO items VALUES (4, 'clock stepped back')");
    await pipeline.waitForCatchUp(undefined, 60_000);

    // A late message of the capture before it is still stale.
    await publishLate(brokers, pipeline.topic, previous, previous.session as CaptureSessionId, [
      "998",
      "stale after the clock stepped back",
    ]);
    await expectEqualAfter("(5, 'after the second late message')", 5);
    expect(
      pipeline
        .standby("s1")
        .applier.output()
        .match(/skipped: it comes from capture/g),
    ).toHaveLength(2);
  });
});
