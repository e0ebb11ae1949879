// Issue 12, item 3: two capture sessions never interleave. A capture process is replaced by a new one (a new
// capture id); then a message of the old process lands late in the topic, written with the real encoder: a
// whole transaction with a commit LSN above anything the source has. Applied, it would add a row the source
// never had and move the standby's position past every later transaction. The applier skips it, says so, and
// the standby stays equal to the source.
import kafkajs from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { InsertChange } from "../../src/change/change-model.js";
import { DataMessageBuilder } from "../../src/wire/data-message.js";
import { ReplicationPipeline, stopProcess } from "../support/replication-pipeline.js";
import { runSql, testServices } from "../support/services.js";
import { compareTables, describeDifferences } from "../support/table-compare.js";
import { readDataTopic } from "../support/topic-reader.js";

const { Kafka, logLevel } = kafkajs;

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
    const oldInsert = old?.message.chunks
      .flatMap((c) => c.changes)
      .find((c) => c.kind === "insert") as InsertChange;
    expect(old?.message.session).not.toBeNull();

    // A new capture process: a newer session, which publishes before the old one's late message lands.
    await stopProcess(pipeline.capture);
    await pipeline.spawnCapture().waitForOutput(/"capture publishing"/, 60_000);
    await runSql(pipeline.source.url, "INSERT INTO items VALUES (2, 'second capture')");
    await pipeline.waitForCatchUp();

    const stale = new DataMessageBuilder(old?.message.envelope as never, old?.message.session as never);
    stale.beginTransaction({
      commitLsn: 0x7fff_0000_0000_0000n,
      commitTimeMicros: BigInt(Date.now()) * 1000n,
      xid: 4242,
      chunk: 0,
      finalChunk: true,
    });
    stale.addChange({ kind: "insert", relation: oldInsert.relation, values: ["999", "stale session"] });
    const producer = new Kafka({ clientId: "stale-session", brokers, logLevel: logLevel.NOTHING }).producer();
    await producer.connect();
    try {
      await producer.send({ topic: pipeline.topic, acks: -1, messages: [{ value: stale.finish() }] });
    } finally {
      await producer.disconnect();
    }

    await runSql(pipeline.source.url, "INSERT INTO items VALUES (3, 'after the late message')");
    await pipeline.waitForCatchUp();
    const comparison = await compareTables(pipeline.source.url, pipeline.standby("s1").db.url, [
      "public.items",
    ]);
    expect(describeDifferences(comparison)).toEqual([]);
    expect(comparison[0]?.standbyRows).toBe(3);
    expect(pipeline.standby("s1").applier.output()).toMatch(
      /skipped: it comes from capture [0-9a-f]{16} session 1/,
    );
  });
});
