// Schema changes that PostgreSQL will not replay as the source ran them: a new enum value used by a
// later transaction of the same standby group, statements that refuse a transaction block, defaults
// the standby would evaluate again.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReplicationPipeline, stopProcess } from "../support/replication-pipeline.js";
import { runSql, testServices } from "../support/services.js";
import { compareTables, describeDifferences } from "../support/table-compare.js";

let pipeline: ReplicationPipeline;

const TABLES = ["public.moods", "public.stamped", "public.parts"];

beforeAll(async () => {
  const services = testServices();
  pipeline = await ReplicationPipeline.start({
    sourceServerUrl: services.sourceUrl,
    standbys: [{ name: "x1", serverUrl: services.standbyUrls[0] as string }],
    brokers: services.kafkaBrokers,
    prefix: "ddl_exact",
    ddl: `
      CREATE TYPE mood AS ENUM ('sad');
      CREATE TABLE moods (id int PRIMARY KEY, m mood);
      CREATE TABLE stamped (id int PRIMARY KEY, note text);
      CREATE TABLE parts (id int, at date NOT NULL, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
      CREATE TABLE parts_2024 PARTITION OF parts FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
      CREATE TABLE parts_2025 PARTITION OF parts FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
    `,
    captureArgs: ["--heartbeat-interval-ms", "300"],
  });
}, 120_000);

afterAll(async () => {
  await pipeline?.stop();
});

async function expectEqual(tables: string[]): Promise<void> {
  await pipeline.waitForCatchUp(undefined, 40_000);
  const comparisons = await compareTables(pipeline.source.url, pipeline.standby("x1").db.url, tables);
  expect(describeDifferences(comparisons)).toEqual([]);
}

/** Runs `writes` on the source while the applier is down, so that it meets them in one batch and one group. */
async function whileApplierStopped(writes: string[]): Promise<void> {
  await stopProcess(pipeline.standby("x1").applier);
  for (const sql of writes) await runSql(pipeline.source.url, sql);
  await pipeline.startApplier("x1");
}

describe("DDL replays exactly, or stops the applier", () => {
  it("commits a new enum value before a later transaction of the same group uses it", async () => {
    await whileApplierStopped([
      "INSERT INTO moods VALUES (1, 'sad')",
      "ALTER TYPE mood ADD VALUE 'happy'",
      "INSERT INTO moods VALUES (2, 'happy')",
      "UPDATE moods SET m = 'happy' WHERE id = 1",
    ]);
    await expectEqual(["public.moods"]);
  });

  it("replays CONCURRENTLY statements outside a transaction block, in order", async () => {
    await whileApplierStopped([
      "INSERT INTO stamped SELECT g, 'row ' || g FROM generate_series(1, 50) g",
      "CREATE INDEX CONCURRENTLY stamped_note ON stamped (note)",
      "INSERT INTO stamped VALUES (51, 'after the index')",
      "CREATE INDEX CONCURRENTLY ON stamped (id, note)",
      "DROP INDEX CONCURRENTLY stamped_note",
      "INSERT INTO parts VALUES (1, '2024-05-01'), (2, '2025-05-01')",
      "ALTER TABLE parts DETACH PARTITION parts_2024 CONCURRENTLY",
      "INSERT INTO parts VALUES (3, '2025-06-01')",
    ]);
    await expectEqual(["public.stamped", "public.parts", "public.parts_2024"]);
    const indexes = await runSql<{ name: string; valid: boolean }>(
      pipeline.standby("x1").db.url,
      "SELECT c.relname AS name, i.indisvalid AS valid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = 'stamped'::regclass ORDER BY 1",
    );
    expect(indexes.rows).toEqual([
      { name: "stamped_id_note_idx", valid: true },
      { name: "stamped_pkey", valid: true },
    ]);
    const attached = await runSql(
      pipeline.standby("x1").db.url,
      "SELECT 1 FROM pg_inherits WHERE inhrelid = 'parts_2024'::regclass",
    );
    expect(attached.rowCount).toBe(0);
    expect(pipeline.standby("x1").applier.output()).not.toMatch(/"level":"error"/);
  });

  it("replays CONCURRENTLY statements again safely after a crash between the statement and the position", async () => {
    const standby = pipeline.standby("x1").db.url;
    await runSql(pipeline.source.url, "CREATE INDEX stamped_again ON stamped (note)");
    await pipeline.waitForCatchUp();
    const before = await runSql<{ next_offset: string; last_commit_lsn: string }>(
      standby,
      "SELECT next_offset::text, last_commit_lsn::text FROM diffrelay.apply_position",
    );
    await runSql(pipeline.source.url, "DROP INDEX CONCURRENTLY stamped_again");
    await runSql(pipeline.source.url, "ALTER TABLE parts DETACH PARTITION parts_2025 CONCURRENTLY");
    const deadline = Date.now() + 30_000;
    while (
      (await runSql(standby, "SELECT 1 FROM pg_inherits WHERE inhrelid = 'parts_2025'::regclass")).rowCount
    ) {
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((r) => setTimeout(r, 100));
    }
    // As if the applier died after each statement ran and before its position committed.
    await stopProcess(pipeline.standby("x1").applier);
    await runSql(standby, "UPDATE diffrelay.apply_position SET next_offset = $1, last_commit_lsn = $2", [
      before.rows[0]?.next_offset,
      before.rows[0]?.last_commit_lsn,
    ]);
    await pipeline.startApplier("x1");
    await expectEqual(["public.stamped", "public.parts", "public.parts_2025"]);
    const left = await runSql(standby, "SELECT 1 FROM pg_class WHERE relname = 'stamped_again'");
    expect(left.rowCount).toBe(0);
    expect(pipeline.standby("x1").applier.output()).not.toMatch(/"level":"error"/);
  });

  it("gives existing rows the source's values of a column added with a volatile default or as identity", async () => {
    await runSql(pipeline.source.url, "INSERT INTO stamped SELECT g, 'old' FROM generate_series(100, 400) g");
    await runSql(
      pipeline.source.url,
      "ALTER TABLE stamped ADD COLUMN at timestamptz DEFAULT clock_timestamp()",
    );
    await runSql(pipeline.source.url, "ALTER TABLE stamped ADD COLUMN u double precision DEFAULT random()");
    await runSql(pipeline.source.url, "ALTER TABLE stamped ADD COLUMN serial_no bigserial");
    await runSql(
      pipeline.source.url,
      "ALTER TABLE stamped ADD COLUMN ident bigint GENERATED ALWAYS AS IDENTITY (START WITH 1000 INCREMENT BY 7)",
    );
    await runSql(pipeline.source.url, "INSERT INTO stamped (id, note) VALUES (401, 'new')");
    // A constant default is stored once, not per row: nothing to send again.
    await runSql(pipeline.source.url, "ALTER TABLE stamped ADD COLUMN plain int DEFAULT 7");
    await expectEqual(TABLES);
    const identity = await runSql<{ relreplident: string }>(
      pipeline.source.url,
      "SELECT relreplident FROM pg_class WHERE oid = 'stamped'::regclass",
    );
    expect(identity.rows[0]?.relreplident).toBe("f");
    expect(pipeline.capture.output()).not.toMatch(/"level":"(error|warn)"/);
  });

  it("refuses, on the source, a volatile default on a table without primary key, naming the way that replicates", async () => {
    await runSql(pipeline.source.url, "CREATE TABLE bare (a int)");
    await runSql(pipeline.source.url, "INSERT INTO bare VALUES (1), (2)");
    await expect(
      runSql(pipeline.source.url, "ALTER TABLE bare ADD COLUMN at timestamptz DEFAULT clock_timestamp()"),
    ).rejects.toThrow(/bare has no primary key/);
    await runSql(pipeline.source.url, "ALTER TABLE bare ADD COLUMN at timestamptz");
    await runSql(pipeline.source.url, "UPDATE bare SET at = clock_timestamp()");
    await runSql(pipeline.source.url, "ALTER TABLE bare ALTER COLUMN at SET DEFAULT clock_timestamp()");
    await expectEqual([...TABLES, "public.bare"]);
  });

  // Last: it stops the applier.
  it("stops the applier with exit 4, naming the statement, its position and the fix, when the standby refuses DDL", async () => {
    await runSql(pipeline.standby("x1").db.url, "CREATE TABLE made_on_the_standby (id int)");
    await runSql(pipeline.source.url, "CREATE TABLE made_on_the_standby (id int PRIMARY KEY)");
    const exit = await pipeline.standby("x1").applier.exited;
    const output = pipeline.standby("x1").applier.output();
    expect(exit.code, output).toBe(4);
    expect(output).toMatch(
      /DDL \\?"CREATE TABLE made_on_the_standby \(id int PRIMARY KEY\)\\?" failed: relation \\?"made_on_the_standby\\?" already exists.*re-seed this standby \(diffrelay seed\).*\[SQLSTATE 42P07\] \(source commit [0-9A-F]+\/[0-9A-F]+, topic/,
    );
  });
});
