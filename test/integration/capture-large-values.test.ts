// Issue 12, item 5: any row PostgreSQL can store replicates. The data topic allows 256 KiB per record
// batch; a single value of several MB (text and bytea), a row of many large TOASTed columns, a whole-row key
// of large values and a transaction far over the limit each reach the standby equal to the source. Then a
// produce Kafka refuses for good (the topic's limit lowered under the running capture) and a value above
// the capture's value limit each stop the capture with exit 7, the slot still before the transaction.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseLsn } from "../../src/change/lsn.js";
import { EXIT } from "../../src/errors/exit-codes.js";
import { exitWithin, ReplicationPipeline, tail } from "../support/replication-pipeline.js";
import { runSql, testServices } from "../support/services.js";
import { compareTables, describeDifferences } from "../support/table-compare.js";

const TOPIC_LIMIT = 256 * 1024;
const MB = 1024 * 1024;
const TABLES = ["public.big_values", "public.wide", "public.no_key", "public.bulk"];

/** `bytes` of hex text that gzip cannot shrink below half: chained md5s. */
const randomHex = (bytes: number, seed: string) =>
  `(SELECT string_agg(md5('${seed}' || g), '') FROM generate_series(1, ${Math.ceil(bytes / 32)}) g)`;

describe("capture: values, rows and transactions larger than the topic's message limit", () => {
  let pipeline: ReplicationPipeline;

  beforeAll(async () => {
    const services = testServices();
    pipeline = await ReplicationPipeline.start({
      sourceServerUrl: services.sourceUrl,
      standbys: [{ name: "s1", serverUrl: services.standbyUrls[0] as string }],
      brokers: services.kafkaBrokers,
      prefix: "large_values",
      topicConfig: { "max.message.bytes": String(TOPIC_LIMIT) },
      ddl: `
        CREATE TABLE big_values (id int PRIMARY KEY, t text, b bytea);
        CREATE TABLE wide (id int PRIMARY KEY, c1 text, c2 text, c3 text, c4 text, c5 text, c6 text);
        CREATE TABLE no_key (t text, n int);
        CREATE TABLE bulk (id int PRIMARY KEY, payload text);`,
    });
  }, 120_000);

  afterAll(async () => {
    await pipeline?.stop();
  });

  it("replicates them exactly", { timeout: 180_000 }, async () => {
    const src = pipeline.source.url;
    // (a) one value of 4 MB of text and one bytea of 2 MB (4 MB of hex in pgoutput), then an update of each.
    await runSql(
      src,
      `INSERT INTO big_values VALUES (1, ${randomHex(4 * MB, "a")}, decode(${randomHex(4 * MB, "b")}, 'hex'))`,
    );
    await runSql(src, `UPDATE big_values SET t = ${randomHex(3 * MB, "c")} || 'é✓' WHERE id = 1`);
    await runSql(src, `UPDATE big_values SET b = decode(${randomHex(2 * MB, "d")}, 'hex') WHERE id = 1`);
    // (b) a row with six TOASTed columns of 1 MB each, then an update of two of them.
    const sixColumns = [1, 2, 3, 4, 5, 6].map((i) => randomHex(MB, `w${i}`)).join(", ");
    await runSql(src, `INSERT INTO wide VALUES (1, ${sixColumns})`);
    await runSql(src, `UPDATE wide SET c2 = ${randomHex(MB, "x")}, c5 = NULL WHERE id = 1`);
    // Without a key the whole old row is the key: the UPDATE's key values are split too.
    await runSql(src, `INSERT INTO no_key VALUES (${randomHex(2 * MB, "k")}, 1)`);
    await runSql(src, "UPDATE no_key SET n = 2");
    // (c) one transaction of 2000 rows of 8 KB each, about 16 MB.
    await runSql(
      src,
      `INSERT INTO bulk SELECT g, ${randomHex(8 * 1024, "bulk")} || g FROM generate_series(1, 2000) g`,
    );

    await pipeline.waitForCatchUp(["s1"], 150_000);
    const comparison = await compareTables(src, pipeline.standby("s1").db.url, TABLES);
    expect(describeDifferences(comparison)).toEqual([]);
    expect(comparison.map((c) => [c.table, c.standbyRows])).toEqual([
      ["public.big_values", 1],
      ["public.wide", 1],
      ["public.no_key", 1],
      ["public.bulk", 2000],
    ]);
    expect(pipeline.capture.output()).toContain('"messageLimitBytes":'); // sized from the topic, as logged
  });

  it("stops with exit 7, slot unconfirmed, on a produce Kafka refuses for good, then on a value above the limit", {
    timeout: 120_000,
  }, async () => {
    const src = pipeline.source.url;
    // The capture sized its messages from 256 KiB; now the broker takes 16 KiB at most.
    await pipeline.alterTopic({ "max.message.bytes": String(16 * 1024) });
    await runSql(src, `INSERT INTO big_values VALUES (2, ${randomHex(100 * 1024, "r")}, NULL)`);
    const refused = await exitWithin(pipeline.capture, 60_000);
    expect(refused.code, tail(pipeline.capture.output())).toBe(EXIT.unpublishable);
    expect(pipeline.capture.output()).toMatch(/larger than the max message size/);
    const confirmedAfterRefusal = await confirmedLsn(pipeline);

    // Started again with a value limit below that row's 100 KiB value: refused before any produce.
    await pipeline.alterTopic({ "max.message.bytes": String(TOPIC_LIMIT) });
    const capture = pipeline.spawnCapture(["--max-value-bytes", String(64 * 1024)]);
    const tooLarge = await exitWithin(capture, 60_000);
    expect(tooLarge.code, tail(capture.output())).toBe(EXIT.unpublishable);
    const named =
      /public\.big_values: column t of the row with key \("2"\), in the transaction committed at LSN ([0-9A-F]+\/[0-9A-F]+), holds 102400 bytes/.exec(
        capture.output(),
      );
    expect(named, tail(capture.output())).not.toBeNull();
    // The slot still holds that transaction: PostgreSQL drops from a slot only the transactions
    // committed before its confirmed position. A keepalive may confirm a position inside the
    // transaction before its commit was decoded, so the bound is the commit, not its rows.
    const commitLsn = parseLsn(named?.[1] as string);
    expect(confirmedAfterRefusal).toBeLessThanOrEqual(commitLsn);
    expect(await confirmedLsn(pipeline)).toBeLessThanOrEqual(commitLsn);
  });
});

async function confirmedLsn(pipeline: ReplicationPipeline): Promise<bigint> {
  const { rows } = await runSql<{ lsn: string }>(
    pipeline.source.url,
    "SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1",
    [pipeline.slot],
  );
  return parseLsn(rows[0]?.lsn as string);
}
