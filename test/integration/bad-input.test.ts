// Bad input that a person can make, each answered with a clear message and an exit code, losing nothing:
// a source whose wal_level is not logical, a table without a primary key configured for DEFAULT identity,
// and standbys that do not match the source (a missing table, a missing column, an incompatible type,
// a value the standby's type rejects). Configuration errors are in cli-config.test.ts, roles in
// security-privileges.test.ts, and foreign or corrupt topic contents in apply-bad-message.test.ts.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { spawnDiffrelay } from "../support/child-process.js";
import { withReplicaWalSource } from "../support/replica-wal-source.js";
import { ReplicationPipeline, tail } from "../support/replication-pipeline.js";
import { runSql, testServices } from "../support/services.js";

const EXIT_SETUP = 3;
const EXIT_DRIFT = 4;

describe("bad input", () => {
  let pipeline: ReplicationPipeline | undefined;

  afterEach(async () => {
    await pipeline?.stop();
    pipeline = undefined;
  });

  it("refuses a source whose wal_level is not logical, naming the setting, with exit 3", async () => {
    await withReplicaWalSource(async (url) => {
      const capture = spawnDiffrelay(
        ["capture", "--source-url", url, "--brokers", testServices().kafkaBrokers.join(",")],
        {},
      );
      const exit = await capture.exited;
      expect(exit.code, capture.output()).toBe(EXIT_SETUP);
      expect(capture.output()).toMatch(/wal_level is replica; set wal_level = logical/);
    });
  });

  it("keeps FULL identity, and says so, for a key-less table configured for DEFAULT; it still replicates", async () => {
    const services = testServices();
    const config = join(mkdtempSync(join(tmpdir(), "diffrelay-config-")), "capture.yaml");
    writeFileSync(config, "capture:\n  identity:\n    public.events: default\n");
    pipeline = await ReplicationPipeline.start({
      sourceServerUrl: services.sourceUrl,
      standbys: [{ name: "b1", serverUrl: services.standbyUrls[0] as string }],
      brokers: services.kafkaBrokers,
      prefix: "bad_identity",
      ddl: "CREATE TABLE events (n integer, note text);",
      captureArgs: ["--config", config],
    });
    expect(pipeline.capture.output()).toMatch(
      /"table":"public.events".*configured for REPLICA IDENTITY DEFAULT, but the table has no primary key: kept FULL/,
    );
    await runSql(pipeline.source.url, "INSERT INTO events VALUES (1, 'a'), (1, 'a')");
    await runSql(
      pipeline.source.url,
      "UPDATE events SET note = 'b' WHERE ctid = (SELECT ctid FROM events LIMIT 1)",
    );
    await pipeline.waitForCatchUp();
    const rows = await runSql<{ note: string }>(
      pipeline.standby("b1").db.url,
      "SELECT note FROM events ORDER BY note",
    );
    expect(rows.rows.map((r) => r.note)).toEqual(["a", "b"]);
  });

  const mismatches = [
    {
      name: "a table the standby lacks",
      standbyChange: "DROP TABLE items",
      write: "INSERT INTO items VALUES (1, 'x', 'abc')",
      message: /items/,
    },
    {
      name: "a column the standby lacks",
      standbyChange: "ALTER TABLE items DROP COLUMN code",
      write: "INSERT INTO items VALUES (1, 'x', 'abc')",
      message: /column "?code"?/,
    },
    {
      name: "a column of an incompatible type",
      standbyChange: "ALTER TABLE items ALTER COLUMN label TYPE integer USING 0",
      write: "INSERT INTO items VALUES (1, 'not a number', 'abc')",
      message: /label \(source text, standby integer\)/,
    },
    {
      name: "a value the standby's type rejects",
      standbyChange: "ALTER TABLE items ALTER COLUMN code TYPE varchar(2)",
      write: "INSERT INTO items VALUES (1, 'x', 'abc')",
      message: /code|too long/,
    },
  ];

  it.each(mismatches)("stops at $name with exit 4, naming it, and applies nothing after it", async (m) => {
    const services = testServices();
    pipeline = await ReplicationPipeline.start({
      sourceServerUrl: services.sourceUrl,
      standbys: [{ name: "m1", serverUrl: services.standbyUrls[0] as string }],
      brokers: services.kafkaBrokers,
      prefix: "bad_standby",
      ddl: "CREATE TABLE items (id integer PRIMARY KEY, label text NOT NULL, code text);",
    });
    await runSql(pipeline.standby("m1").db.url, m.standbyChange);
    const before = await pipeline.position("m1");
    await runSql(pipeline.source.url, m.write);
    const applier = pipeline.standby("m1").applier;
    const exit = await applier.exited;
    expect(exit.code, tail(applier.output())).toBe(EXIT_DRIFT);
    expect(applier.output()).toMatch(m.message);
    expect(applier.output()).toMatch(new RegExp(`topic ${pipeline.topic} partition 0 offset \\d+`));
    // Nothing after the failing transaction was applied, and its position did not move.
    expect(await pipeline.position("m1")).toEqual(before);
  });
});
