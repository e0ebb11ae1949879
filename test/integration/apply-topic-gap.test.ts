// Acceptance (issue 12, item 4): a gap in the topic is never applied over. With the applier stopped, the
// source writes on, then the records the standby needs next are deleted (kafka-delete-records through
// kafkajs's admin.deleteTopicRecords), or the topic is recreated so its offsets start again below the
// standby's position. The restarted applier must exit with code 4, naming the topic, partition, the
// offset it needs and the earliest one left, and "re-seed"; the standby keeps exactly what it had and
// `diffrelay status` names the gap. Before the fix kafkajs reset to the earliest offset and the applier
// applied on, silently missing the deleted transactions.
import kafkajs from "kafkajs";
import { afterEach, describe, expect, it } from "vitest";
import { spawnDiffrelay } from "../support/child-process.js";
import { exitWithin, ReplicationPipeline, stopProcess, tail } from "../support/replication-pipeline.js";
import { runSql, testServices } from "../support/services.js";

const { Kafka, logLevel } = kafkajs;

const EXIT_DRIFT = 4;
const DDL = "CREATE TABLE items (id integer PRIMARY KEY, label text NOT NULL);";

async function standbyIds(url: string): Promise<number[]> {
  const { rows } = await runSql<{ id: number }>(url, "SELECT id FROM items ORDER BY id");
  return rows.map((r) => r.id);
}

async function statusReport(p: ReplicationPipeline): Promise<string> {
  const status = spawnDiffrelay([
    "status",
    "--brokers",
    p.options.brokers.join(","),
    "--topic",
    p.topic,
    "--standbys",
    `s1=${p.standby("s1").db.url}`,
  ]);
  await status.exited;
  return status.output();
}

describe("apply: a gap in the topic is never applied over", () => {
  let pipeline: ReplicationPipeline | undefined;

  afterEach(async () => {
    await pipeline?.stop();
    pipeline = undefined;
  });

  async function stoppedBehind(prefix: string) {
    const services = testServices();
    const p = await ReplicationPipeline.start({
      sourceServerUrl: services.sourceUrl,
      standbys: [{ name: "s1", serverUrl: services.standbyUrls[0] as string }],
      brokers: services.kafkaBrokers,
      prefix,
      ddl: DDL,
    });
    pipeline = p;
    for (let id = 1; id <= 3; id++)
      await runSql(p.source.url, "INSERT INTO items VALUES ($1, 'before')", [id]);
    await p.waitForCatchUp();
    await stopProcess(p.standby("s1").applier);
    const position = (await p.position("s1"))?.nextOffset;
    if (position === undefined) throw new Error("the standby has no position after catching up");
    const kafka = new Kafka({
      clientId: "topic-gap-test",
      brokers: services.kafkaBrokers,
      logLevel: logLevel.NOTHING,
    });
    return { p, position, kafka };
  }

  it("records deleted past the standby's position: exit 4 naming topic, offsets and re-seed; nothing applied", {
    timeout: 180_000,
  }, async () => {
    const { p, position, kafka } = await stoppedBehind("gap_deleted");
    // Each in its own transaction, so the topic holds several messages past the standby's position.
    for (let id = 4; id <= 9; id++) {
      await runSql(p.source.url, "INSERT INTO items VALUES ($1, 'while stopped')", [id]);
      await new Promise((r) => setTimeout(r, 100));
    }
    const admin = kafka.admin();
    await admin.connect();
    let earliest: bigint;
    try {
      await expect
        .poll(async () => BigInt((await admin.fetchTopicOffsets(p.topic))[0]?.high ?? "0"), {
          timeout: 30_000,
        })
        .toBeGreaterThanOrEqual(position + 2n);
      const high = BigInt((await admin.fetchTopicOffsets(p.topic))[0]?.high ?? "0");
      earliest = high - 1n;
      await admin.deleteTopicRecords({
        topic: p.topic,
        partitions: [{ partition: 0, offset: earliest.toString() }],
      });
      expect(BigInt((await admin.fetchTopicOffsets(p.topic))[0]?.low ?? "0")).toBe(earliest);
    } finally {
      await admin.disconnect();
    }

    const applier = p.spawnApplier("s1");
    const exit = await exitWithin(applier, 60_000);
    expect(exit, tail(applier.output())).toEqual({ code: EXIT_DRIFT, signal: null });
    expect(applier.output()).toContain(
      `gap in topic ${p.topic} partition 0: the standby needs offset ${position} next, but the earliest offset left is ${earliest}; re-seed the standby with diffrelay seed`,
    );
    expect(await standbyIds(p.standby("s1").db.url)).toEqual([1, 2, 3]);
    expect((await p.position("s1"))?.nextOffset).toBe(position);
    expect(await statusReport(p)).toMatch(
      new RegExp(`gap in topic ${p.topic} partition 0: the standby needs offset ${position} next`),
    );
  });

  it("a recreated topic whose offsets start again below the standby's position: exit 4, nothing applied", {
    timeout: 180_000,
  }, async () => {
    const { p, position, kafka } = await stoppedBehind("gap_recreated");
    await stopProcess(p.capture);
    const admin = kafka.admin();
    await admin.connect();
    try {
      await admin.deleteTopics({ topics: [p.topic], timeout: 10_000 });
      await expect
        .poll(async () => (await admin.listTopics()).includes(p.topic), { timeout: 30_000 })
        .toBe(false);
      await expect
        .poll(
          () =>
            admin.createTopics({ topics: [{ topic: p.topic, numPartitions: 1 }], waitForLeaders: true }).then(
              () => true,
              () => false,
            ),
          { timeout: 30_000 },
        )
        .toBe(true);
    } finally {
      await admin.disconnect();
    }

    const applier = p.spawnApplier("s1");
    const exit = await exitWithin(applier, 60_000);
    expect(exit, tail(applier.output())).toEqual({ code: EXIT_DRIFT, signal: null });
    expect(applier.output()).toContain(
      `gap in topic ${p.topic} partition 0: the standby needs offset ${position} next, but the earliest offset left is 0 and the topic ends at offset 0, below the standby's position (was the topic recreated?); re-seed the standby with diffrelay seed`,
    );
    expect(await standbyIds(p.standby("s1").db.url)).toEqual([1, 2, 3]);
  });
});
