// diffrelay doctor as the real CLI against the real stack: a good setup passes, and each deliberate
// breakage fails with its own line (a standby missing a table, an apply role without SET on
// session_replication_role, a data topic with 2 partitions, a standby position below the topic's earliest
// offset, a source with wal_level replica).
import kafkajs from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnDiffrelay } from "../support/child-process.js";
import { withReplicaWalSource } from "../support/replica-wal-source.js";
import { ReplicationPipeline, stopProcess } from "../support/replication-pipeline.js";
import { runSql, testServices, uniqueName } from "../support/services.js";
import { deleteTopics } from "../support/topic-reader.js";

const { Kafka, logLevel } = kafkajs;
const EXIT_SETUP = 3;
const services = testServices();
let pipeline: ReplicationPipeline;
const brokers = services.kafkaBrokers.join(",");

async function doctor(args: string[]): Promise<{ code: number | null; output: string }> {
  const child = spawnDiffrelay(["doctor", "--brokers", brokers, ...args]);
  const exit = await child.exited;
  return { code: exit.code, output: child.output() };
}

/** The doctor arguments for the pipeline's source, topic and the given standbys. */
function pipelineArgs(standbys: Record<string, string>): string[] {
  return [
    "--source-url",
    pipeline.source.url,
    "--topic",
    pipeline.topic,
    "--slot",
    pipeline.slot,
    "--publication",
    pipeline.publication,
    "--standbys",
    Object.entries(standbys)
      .map(([name, url]) => `${name}=${url}`)
      .join(","),
  ];
}

const failLines = (output: string) => output.split("\n").filter((l) => l.startsWith("fail"));

function admin() {
  return new Kafka({
    clientId: "doctor-test",
    brokers: services.kafkaBrokers,
    logLevel: logLevel.NOTHING,
  }).admin();
}

beforeAll(async () => {
  pipeline = await ReplicationPipeline.start({
    sourceServerUrl: services.sourceUrl,
    standbys: [
      { name: "d1", serverUrl: services.standbyUrls[0] as string },
      { name: "d2", serverUrl: services.standbyUrls[1] ?? (services.standbyUrls[0] as string) },
    ],
    brokers: services.kafkaBrokers,
    prefix: "doctor",
    ddl: "CREATE TABLE items (id integer PRIMARY KEY, name text); CREATE TABLE notes (n integer, body text);",
  });
  await runSql(
    pipeline.source.url,
    "INSERT INTO items VALUES (1, 'a'), (2, 'b'); INSERT INTO notes VALUES (1, 'x')",
  );
  await pipeline.waitForCatchUp();
}, 240_000);

afterAll(async () => {
  await pipeline?.stop();
});

describe("diffrelay doctor", () => {
  it("passes a working setup, one line per check, and says what it warns about", async () => {
    const good = await doctor(
      pipelineArgs({ d1: pipeline.standby("d1").db.url, d2: pipeline.standby("d2").db.url }),
    );
    expect(good.code, good.output).toBe(0);
    expect(failLines(good.output)).toEqual([]);
    expect(good.output).toMatch(/^ok {4}source {6}wal_level: logical$/m);
    expect(good.output).toMatch(new RegExp(`^ok .*kafka .*topic: ${pipeline.topic}: 1 partition$`, "m"));
    expect(good.output).toMatch(/^ok .*kafka .*retention: a standby may be stopped up to \d+ days/m);
    expect(good.output).toMatch(/^warn .*source .*primary keys: no primary key: public\.notes/m);
    for (const name of ["d1", "d2"]) {
      expect(good.output).toMatch(
        new RegExp(`^ok .*standby ${name} +tables: all 3 published tables present`, "m"),
      );
      expect(good.output).toMatch(new RegExp(`^ok .*standby ${name} +position: next offset \\d+`, "m"));
    }
    const json = spawnDiffrelay([
      "doctor",
      "--json",
      "--brokers",
      brokers,
      ...pipelineArgs({ d1: pipeline.standby("d1").db.url }),
    ]);
    expect((await json.exited).code).toBe(0);
    const report = JSON.parse(json.output()) as { ok: boolean; checks: { area: string; status: string }[] };
    expect(report.ok).toBe(true);
    expect(report.checks.filter((c) => c.area === "standby d1").length).toBeGreaterThanOrEqual(4);
  });

  it("fails a standby that lacks a published table, naming it", async () => {
    await stopProcess(pipeline.standby("d2").applier);
    await runSql(pipeline.standby("d2").db.url, "DROP TABLE notes");
    const broken = await doctor(pipelineArgs({ d2: pipeline.standby("d2").db.url }));
    expect(broken.code, broken.output).toBe(EXIT_SETUP);
    expect(failLines(broken.output)).toEqual([
      expect.stringMatching(
        /^fail .*standby d2 +table: public\.notes: the table does not exist on the standby; fix: create it/,
      ),
    ]);
  });

  it("fails an apply role without SET on session_replication_role", async () => {
    const role = uniqueName("doctor_noset");
    const db = pipeline.standby("d1").db;
    await runSql(
      db.url,
      `CREATE ROLE ${role} NOLOGIN; GRANT CREATE ON DATABASE "${db.name}" TO ${role};
       GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public TO ${role};
       GRANT USAGE ON SCHEMA diffrelay TO ${role}; GRANT SELECT ON ALL TABLES IN SCHEMA diffrelay TO ${role}`,
    );
    try {
      // The stack admits only its own role over TCP: the session runs as the apply role instead
      // (role set at connection start), so every privilege doctor looks at is that role's.
      const url = `${db.url}?options=${encodeURIComponent(`-c role=${role}`)}`;
      const broken = await doctor(pipelineArgs({ d1: url }));
      expect(broken.code, broken.output).toBe(EXIT_SETUP);
      expect(failLines(broken.output)).toEqual([
        expect.stringMatching(
          new RegExp(
            `^fail .*standby d1 +apply role: ${role} lacks privileges; fix: GRANT SET ON PARAMETER session_replication_role TO ${role}$`,
          ),
        ),
      ]);
    } finally {
      await runSql(db.url, `DROP OWNED BY ${role}; DROP ROLE ${role}`);
    }
  });

  it("fails a data topic with 2 partitions", async () => {
    const topic = uniqueName("doctor_two_partitions");
    const a = admin();
    await a.connect();
    try {
      await a.createTopics({ topics: [{ topic, numPartitions: 2 }], waitForLeaders: true });
      const broken = await doctor(["--source-url", pipeline.source.url, "--topic", topic]);
      expect(broken.code, broken.output).toBe(EXIT_SETUP);
      expect(failLines(broken.output)).toEqual([
        expect.stringMatching(new RegExp(`^fail .*kafka +topic: ${topic} has 2 partitions`)),
      ]);
    } finally {
      await a.disconnect();
      await deleteTopics(services.kafkaBrokers, [topic]);
    }
  });

  it("fails a standby whose position the topic no longer holds", async () => {
    await stopProcess(pipeline.standby("d1").applier);
    await runSql(pipeline.source.url, "INSERT INTO items VALUES (3, 'c'), (4, 'd')");
    const a = admin();
    await a.connect();
    try {
      // Wait until the capture has published the new rows, then delete everything up to the end.
      const position = await pipeline.position("d1");
      let high = 0n;
      for (let i = 0; i < 100 && high <= (position?.nextOffset ?? 0n); i++) {
        high = BigInt((await a.fetchTopicOffsets(pipeline.topic))[0]?.high ?? "0");
        await new Promise((r) => setTimeout(r, 200));
      }
      await a.deleteTopicRecords({
        topic: pipeline.topic,
        partitions: [{ partition: 0, offset: high.toString() }],
      });
    } finally {
      await a.disconnect();
    }
    const broken = await doctor(pipelineArgs({ d1: pipeline.standby("d1").db.url }));
    expect(broken.code, broken.output).toBe(EXIT_SETUP);
    expect(failLines(broken.output)).toEqual([
      expect.stringMatching(
        /^fail .*standby d1 +position: next offset \d+ is below the topic's earliest \d+: offsets .* are gone/,
      ),
    ]);
  });

  it("fails a source whose wal_level is not logical", async () => {
    await withReplicaWalSource(async (url) => {
      const broken = await doctor(["--source-url", url, "--topic", uniqueName("doctor_wal")]);
      expect(broken.code, broken.output).toBe(EXIT_SETUP);
      expect(failLines(broken.output)).toContainEqual(
        expect.stringMatching(
          /^fail .*source +wal_level: replica: logical decoding needs logical; fix: ALTER SYSTEM SET wal_level = logical/,
        ),
      );
    });
  });
});
