// Acceptance: "a corrupt message stops the applier". With an applier caught up, a message it must not apply
// is produced into the data topic, then the source writes once more. The applier exits with code 5 and
// names the topic, partition and offset; the standby holds everything before that message and nothing after
// it; a restarted applier stops at the same message (nothing is skipped).
import kafkajs from "kafkajs";
import { afterEach, describe, expect, it } from "vitest";
import { DataMessageBuilder } from "../../src/wire/data-message.js";
import { computeSourceId } from "../../src/wire/envelope.js";
import { TEST_SESSION } from "../support/capture-session-id.js";
import type { DiffrelayProcess } from "../support/child-process.js";
import { exitWithin, MARKER_TABLE, ReplicationPipeline, tail } from "../support/replication-pipeline.js";
import { runSql, testServices } from "../support/services.js";
import { compareTables, describeDifferences } from "../support/table-compare.js";

const { Kafka, logLevel } = kafkajs;

const EXIT_BAD_FRAME = 5;
const DDL = "CREATE TABLE items (id integer PRIMARY KEY, label text NOT NULL);";

/** A well-formed data message: one (empty) transaction committed far ahead of anything real. */
function validMessage(sourceId: bigint): Buffer {
  const builder = new DataMessageBuilder({ sourceId, epoch: 0 }, TEST_SESSION);
  builder.beginTransaction({
    commitLsn: 0xffff_0000_0000n,
    commitTimeMicros: BigInt(Date.now()) * 1000n,
    xid: 4242,
    chunk: 0,
    finalChunk: true,
  });
  return builder.finish();
}

interface BadCase {
  name: string;
  /** Builds the message from the source id the standby follows. */
  build(realSourceId: bigint): Buffer;
  /** What the applier's output must say about it, besides where it is. */
  problem: RegExp;
}

const CASES: BadCase[] = [
  {
    name: "garbage bytes",
    build: () => Buffer.from("this is not a diffrelay message \u0000\u00ff", "utf8"),
    problem: /magic/i,
  },
  {
    name: "a wrong magic",
    build: (id) => {
      const m = validMessage(id);
      m.write("XX", 0, "latin1");
      return m;
    },
    problem: /magic/i,
  },
  {
    name: "a future format version (99)",
    build: (id) => {
      const m = validMessage(id);
      m[2] = 99;
      return m;
    },
    problem: /version 99/,
  },
  {
    name: "a valid envelope from another source",
    build: (id) => validMessage(id ^ 0x5a5a_5a5a_5a5a_5a5an),
    problem: /source/,
  },
];

async function standbyIds(url: string): Promise<number[]> {
  const { rows } = await runSql<{ id: number }>(url, "SELECT id FROM items ORDER BY id");
  return rows.map((r) => r.id);
}

describe("apply: a corrupt message stops the applier", () => {
  let pipeline: ReplicationPipeline | undefined;

  afterEach(async () => {
    await pipeline?.stop();
    pipeline = undefined;
  });

  it.each(CASES)("stops at $name with exit code 5 and skips nothing, also after a restart", async (bad) => {
    const services = testServices();
    const p = await ReplicationPipeline.start({
      sourceServerUrl: services.sourceUrl,
      standbys: [{ name: "s1", serverUrl: services.standbyUrls[0] as string }],
      brokers: services.kafkaBrokers,
      prefix: "apply_bad",
      ddl: DDL,
    });
    pipeline = p;
    const standbyUrl = p.standby("s1").db.url;

    // Caught up on real transactions first.
    for (let id = 1; id <= 3; id++) {
      await runSql(p.source.url, "INSERT INTO items VALUES ($1, $2)", [id, `before ${id}`]);
    }
    await p.waitForCatchUp();
    expect(await standbyIds(standbyUrl)).toEqual([1, 2, 3]);

    const { rows } = await runSql<{ sysid: string; db: string }>(
      p.source.url,
      "SELECT system_identifier::text AS sysid, current_database() AS db FROM pg_control_system()",
    );
    const realSourceId = computeSourceId(rows[0]?.sysid as string, rows[0]?.db as string);

    const kafka = new Kafka({
      clientId: "apply-bad-test",
      brokers: services.kafkaBrokers,
      logLevel: logLevel.NOTHING,
    });
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    const admin = kafka.admin();
    await Promise.all([producer.connect(), admin.connect()]);
    let badOffset: bigint;
    try {
      // Uncompressed, straight into the data topic's only partition.
      const [sent] = await producer.send({
        topic: p.topic,
        messages: [{ value: bad.build(realSourceId), partition: 0 }],
      });
      badOffset = BigInt(sent?.baseOffset ?? "-1");
      expect(badOffset).toBeGreaterThan(0n);
      // One more source write: the capture publishes it after the bad message.
      await runSql(p.source.url, "INSERT INTO items VALUES (4, 'after')");
      // It really is on the topic behind the bad message, so its absence on the standby means something.
      await expect
        .poll(async () => BigInt((await admin.fetchTopicOffsets(p.topic))[0]?.high ?? "0"), {
          timeout: 30_000,
        })
        .toBeGreaterThan(badOffset + 1n);
    } finally {
      await Promise.all([producer.disconnect(), admin.disconnect()]);
    }

    const where = new RegExp(`topic ${p.topic} partition 0 offset ${badOffset}\\b`);
    const checkStopped = async (applier: DiffrelayProcess, run: string) => {
      const exit = await exitWithin(applier, 60_000);
      expect(exit, `${run}: exit\n${tail(applier.output())}`).toEqual({ code: EXIT_BAD_FRAME, signal: null });
      expect(applier.output(), `${run}: names the bad message`).toMatch(where);
      expect(applier.output(), `${run}: says what is wrong`).toMatch(bad.problem);
      // Everything before the bad message, nothing after it.
      expect((await p.position("s1"))?.nextOffset, `${run}: position`).toBe(badOffset);
      expect(await standbyIds(standbyUrl), `${run}: rows`).toEqual([1, 2, 3]);
      const comparison = await compareTables(p.source.url, standbyUrl, [MARKER_TABLE]);
      expect(describeDifferences(comparison), `${run}: markers`).toEqual([]);
    };

    await checkStopped(p.standby("s1").applier, "first run");
    // A restart reads the same position and meets the same message: it is not skipped.
    await checkStopped(p.spawnApplier("s1"), "after a restart");

    // The source itself moved on: the standby is exactly one write behind, at the bad message.
    expect(
      (await runSql<{ n: string }>(p.source.url, "SELECT count(*)::text AS n FROM items")).rows[0]?.n,
    ).toBe("4");
  });
});
