// Which sequences reach a standby: a serial column of a table outside --tables is not the standby's
// business. Publishing its sequence used to stop the applier at the first message ("relation … does
// not exist", exit 4); the published tables' own sequences still advance.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { MARKER_TABLE, ReplicationPipeline } from "../support/replication-pipeline.js";
import { runSql, testServices, withClient } from "../support/services.js";

let pipeline: ReplicationPipeline;

beforeAll(async () => {
  const services = testServices();
  pipeline = await ReplicationPipeline.start({
    sourceServerUrl: services.sourceUrl,
    standbys: [{ name: "s1", serverUrl: services.standbyUrls[0] as string }],
    brokers: services.kafkaBrokers,
    prefix: "seq_scope",
    ddl: "CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL);",
    captureArgs: ["--tables", `public.orders,${MARKER_TABLE}`, "--heartbeat-interval-ms", "300"],
  });
}, 120_000);

afterAll(async () => {
  await pipeline?.stop();
});

describe("sequences of unpublished tables", () => {
  it("does not publish them, and the applier keeps applying", async () => {
    const source = pipeline.source.url;
    // A table only the source has; DDL capture off, as for any table outside --tables.
    await runSql(
      source,
      "SET diffrelay.capture_ddl = off; CREATE TABLE outside (id serial PRIMARY KEY, note text); INSERT INTO outside (note) SELECT 'x' FROM generate_series(1, 25);",
    );
    await runSql(source, "INSERT INTO orders (item) SELECT 'o' FROM generate_series(1, 60)");
    // Several heartbeats, each of which would publish the moved sequences.
    await new Promise((r) => setTimeout(r, 1500));
    await pipeline.waitForCatchUp(["s1"], 30_000);

    const standby = pipeline.standby("s1").db.url;
    const last = await withClient(standby, async (c) =>
      BigInt((await c.query("SELECT last_value::text AS v FROM orders_id_seq")).rows[0].v),
    );
    expect(last).toBeGreaterThanOrEqual(60n);
    expect(pipeline.standby("s1").applier.output()).not.toMatch(/"level":(50|60|"error"|"fatal")/);
    expect(pipeline.standby("s1").applier.output()).not.toMatch(/outside_id_seq/);
  });
});

describe("a published standalone sequence a hand-built standby lacks", () => {
  let schemaPipeline: ReplicationPipeline;

  beforeAll(async () => {
    const services = testServices();
    schemaPipeline = await ReplicationPipeline.start({
      sourceServerUrl: services.sourceUrl,
      standbys: [{ name: "s1-hand-built", serverUrl: services.standbyUrls[0] as string }],
      brokers: services.kafkaBrokers,
      prefix: "seq_missing",
      ddl: "CREATE TABLE tickets (id serial PRIMARY KEY, note text);",
      // FOR TABLES IN SCHEMA: the schema's standalone sequences are published too.
      captureArgs: ["--schemas", "public", "--heartbeat-interval-ms", "300"],
    });
  }, 120_000);

  afterAll(async () => {
    await schemaPipeline?.stop();
  });

  it("is skipped with one warning, and the applier keeps applying", async () => {
    const source = schemaPipeline.source.url;
    await runSql(
      source,
      "SET diffrelay.capture_ddl = off; CREATE SEQUENCE invoice_no; SELECT nextval('invoice_no') FROM generate_series(1, 5);",
    );
    await runSql(source, "INSERT INTO tickets (note) SELECT 't' FROM generate_series(1, 40)");
    await new Promise((r) => setTimeout(r, 1500));
    await runSql(source, "SELECT nextval('invoice_no')");
    await new Promise((r) => setTimeout(r, 800));
    await schemaPipeline.waitForCatchUp(["s1-hand-built"], 30_000);

    const standby = schemaPipeline.standby("s1-hand-built").db.url;
    const count = await withClient(standby, async (c) =>
      Number((await c.query("SELECT count(*)::int AS n FROM tickets")).rows[0].n),
    );
    expect(count).toBe(40);
    const output = schemaPipeline.standby("s1-hand-built").applier.output();
    expect(
      output.match(/sequence \\"public\\"\.\\"invoice_no\\" is published but the standby has none/g),
    ).toHaveLength(1);
    expect(output).not.toMatch(/"level":(50|60)/);
  });
});
