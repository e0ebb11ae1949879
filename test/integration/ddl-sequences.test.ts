import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReplicationPipeline } from "../support/replication-pipeline.js";
import { testServices, withClient } from "../support/services.js";
import { compareTables, describeDifferences } from "../support/table-compare.js";

let pipeline: ReplicationPipeline;

beforeAll(async () => {
  const services = testServices();
  pipeline = await ReplicationPipeline.start({
    sourceServerUrl: services.sourceUrl,
    standbys: [{ name: "s1", serverUrl: services.standbyUrls[0] as string }],
    brokers: services.kafkaBrokers,
    prefix: "ddl_seq",
    ddl: "CREATE TABLE orders (id serial PRIMARY KEY, item text NOT NULL);",
    captureArgs: ["--heartbeat-interval-ms", "300"],
  });
}, 120_000);

afterAll(async () => {
  await pipeline?.stop();
});

describe("schema changes and sequences", () => {
  it("replicates a column added with a default mid-load, and the writes that use it, without a pause", async () => {
    const source = pipeline.source.url;
    let stop = false;
    let written = 0;
    // A steady stream of inserts that keeps running across the schema change.
    const load = withClient(source, async (client) => {
      while (!stop) {
        await client.query("INSERT INTO orders (item) VALUES ('before or after')");
        written++;
      }
    });
    await new Promise((r) => setTimeout(r, 500));
    await withClient(source, async (client) => {
      await client.query("ALTER TABLE orders ADD COLUMN quantity integer NOT NULL DEFAULT 1");
      await client.query("INSERT INTO orders (item, quantity) VALUES ('uses the new column', 42)");
      await client.query("UPDATE orders SET quantity = 7 WHERE id = 1");
      await client.query("CREATE INDEX orders_item ON orders (item)");
      await client.query("CREATE TABLE created_later (id bigint PRIMARY KEY, note text)");
      await client.query("INSERT INTO created_later VALUES (1, 'new table, replicated')");
      await client.query("CREATE TABLE later_no_key (a int, b text)");
      await client.query("INSERT INTO later_no_key VALUES (1, 'x'), (1, 'x')");
      // Only possible because the source's event trigger gave it REPLICA IDENTITY FULL.
      await client.query(
        "UPDATE later_no_key SET b = 'y' WHERE ctid = (SELECT ctid FROM later_no_key LIMIT 1)",
      );
    });
    await new Promise((r) => setTimeout(r, 500));
    stop = true;
    await load;
    expect(written).toBeGreaterThan(10);

    await pipeline.waitForCatchUp();
    const standby = pipeline.standby("s1").db.url;
    const comparisons = await compareTables(source, standby, [
      "public.orders",
      "public.created_later",
      "public.later_no_key",
    ]);
    expect(describeDifferences(comparisons)).toEqual([]);
    const index = await withClient(standby, (c) =>
      c.query("SELECT 1 FROM pg_indexes WHERE indexname = 'orders_item'"),
    );
    expect(index.rowCount).toBe(1);
    expect(pipeline.capture.output()).not.toMatch(/"level":"error"/);
    expect(pipeline.standby("s1").applier.output()).not.toMatch(/"level":"error"/);
  });

  it("advances the standby's sequences, so inserts there after a takeover do not collide", async () => {
    const source = pipeline.source.url;
    await withClient(source, (c) =>
      c.query("INSERT INTO orders (item) SELECT 'bulk' FROM generate_series(1, 200)"),
    );
    const sourceLast = await withClient(source, async (c) =>
      BigInt((await c.query("SELECT last_value::text AS v FROM orders_id_seq")).rows[0].v),
    );
    const standby = pipeline.standby("s1").db.url;
    const deadline = Date.now() + 30_000;
    let standbyLast = 0n;
    while (Date.now() < deadline) {
      standbyLast = await withClient(standby, async (c) =>
        BigInt((await c.query("SELECT last_value::text AS v FROM orders_id_seq")).rows[0].v),
      );
      if (standbyLast >= sourceLast) break;
      await new Promise((r) => setTimeout(r, 200));
    }
    expect(standbyLast).toBeGreaterThanOrEqual(sourceLast);
    await pipeline.waitForCatchUp();
    // An insert on the standby, as on a promoted standby, takes a fresh key.
    await withClient(standby, (c) => c.query("INSERT INTO orders (item) VALUES ('written on the standby')"));
  });
});
