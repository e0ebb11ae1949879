// Seed's text COPY and the sequences a seed must carry: a standby seeded from a primary whose database
// prints values its own way (DateStyle, IntervalStyle, extra_float_digits, bytea_output, TimeZone), into
// a standby whose database reads them another way, holds the same values; and it holds the position of a
// standalone sequence used before the seed.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnDiffrelay } from "../support/child-process.js";
import { ReplicationPipeline, stopProcess } from "../support/replication-pipeline.js";
import { runSql, testServices } from "../support/services.js";
import { compareTables, describeDifferences } from "../support/table-compare.js";

// The enum column makes seed copy this table as text, where session settings decide the bytes.
const DDL = `
CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE TABLE moments (
  id integer PRIMARY KEY, m mood NOT NULL, d date, ts timestamptz, tsn timestamp, iv interval, f float8, b bytea
);
CREATE SEQUENCE tickets;
`;
const TABLES = ["public.moments"];
const ROWS = `INSERT INTO moments
  SELECT g, 'happy', DATE '2024-01-02' + g, TIMESTAMPTZ '2024-01-02 10:00:00+00' + g * INTERVAL '1 hour',
         TIMESTAMP '2024-03-04 05:06:07.891' + g * INTERVAL '1 day', INTERVAL '-1 day +02:03:04.5' * g,
         0.1::float8 + 0.2::float8 + g, decode('00ff5c27' || lpad(to_hex(g), 4, '0'), 'hex')
    FROM generate_series($1::int, $2::int) g`;

let pipeline: ReplicationPipeline;

beforeAll(async () => {
  const services = testServices();
  pipeline = await ReplicationPipeline.start({
    sourceServerUrl: services.sourceUrl,
    standbys: [{ name: "s1", serverUrl: services.standbyUrls[0] as string }],
    brokers: services.kafkaBrokers,
    prefix: "seed_settings",
    ddl: DDL,
    captureArgs: ["--heartbeat-interval-ms", "300"],
  });
  // Each side's database prints and reads values differently from the other and from the defaults.
  await runSql(
    pipeline.source.url,
    `ALTER DATABASE ${pipeline.source.name} SET DateStyle = 'SQL, DMY';
     ALTER DATABASE ${pipeline.source.name} SET IntervalStyle = 'sql_standard';
     ALTER DATABASE ${pipeline.source.name} SET extra_float_digits = -3;
     ALTER DATABASE ${pipeline.source.name} SET bytea_output = 'escape';
     ALTER DATABASE ${pipeline.source.name} SET TimeZone = 'Asia/Kolkata'`,
  );
  const standby = pipeline.standby("s1").db;
  await runSql(
    standby.url,
    `ALTER DATABASE ${standby.name} SET DateStyle = 'SQL, MDY';
     ALTER DATABASE ${standby.name} SET IntervalStyle = 'postgres_verbose';
     ALTER DATABASE ${standby.name} SET TimeZone = 'America/New_York'`,
  );
}, 120_000);

afterAll(async () => {
  await pipeline?.stop();
});

describe("seed whatever the servers' session settings", () => {
  it("copies text-format tables exactly and carries a standalone sequence's position", async () => {
    const source = pipeline.source.url;
    const standby = pipeline.standby("s1").db.url;
    await stopProcess(pipeline.standby("s1").applier);
    await runSql(source, ROWS, [1, 200]);
    // A sequence no column owns, used before the seed; the capture publishes its position now.
    await runSql(source, "SELECT nextval('tickets') FROM generate_series(1, 40)");
    await new Promise((r) => setTimeout(r, 1500));

    const seed = spawnDiffrelay([
      "seed",
      "--source-url",
      source,
      "--standby-url",
      standby,
      "--standby-name",
      "s1",
      "--brokers",
      pipeline.options.brokers.join(","),
      "--topic",
      pipeline.topic,
      "--slot",
      pipeline.slot,
      "--publication",
      pipeline.publication,
    ]);
    expect((await seed.exited).code, seed.output()).toBe(0);
    const copied = JSON.parse(/(\{"event":"seed complete".*\})/.exec(seed.output())?.[1] ?? "{}");
    expect(copied.tables.find((t: { table: string }) => t.table === "public.moments").binary).toBe(false);
    expect(describeDifferences(await compareTables(source, standby, TABLES))).toEqual([]);
    const seeded = await runSql<{ d: string; ts: string; f: string }>(
      standby,
      `SELECT to_char(d, 'YYYY-MM-DD') AS d, extract(epoch FROM ts)::text AS ts,
              (f = 0.1::float8 + 0.2::float8 + 1)::text AS f FROM moments WHERE id = 1`,
    );
    expect(seeded.rows[0]).toEqual({ d: "2024-01-03", ts: "1704193200.000000", f: "true" });

    await pipeline.startApplier("s1");
    await runSql(source, ROWS, [201, 260]);
    await pipeline.waitForCatchUp();
    expect(describeDifferences(await compareTables(source, standby, TABLES))).toEqual([]);
    const tickets = await runSql<{ v: string }>(standby, "SELECT last_value::text AS v FROM tickets");
    expect(BigInt(tickets.rows[0]?.v ?? "0")).toBeGreaterThanOrEqual(40n);

    const verify = await pipeline.verify("s1");
    expect(verify.code, verify.output).toBe(0);
    expect(verify.report.equal).toBe(true);
  });
});
