// GENERATED ALWAYS AS IDENTITY columns under REPLICA IDENTITY DEFAULT: every update carries every
// non-key column and a key change carries the key, and PostgreSQL refuses to SET such a column.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReplicationPipeline } from "../support/replication-pipeline.js";
import { runSql, testServices } from "../support/services.js";
import { compareTables, describeDifferences } from "../support/table-compare.js";

let pipeline: ReplicationPipeline;

beforeAll(async () => {
  const services = testServices();
  const config = join(mkdtempSync(join(tmpdir(), "diffrelay-identity-")), "capture.yaml");
  writeFileSync(config, "capture:\n  identity:\n    public.ids: default\n    public.tagged: default\n");
  pipeline = await ReplicationPipeline.start({
    sourceServerUrl: services.sourceUrl,
    standbys: [{ name: "i1", serverUrl: services.standbyUrls[0] as string }],
    brokers: services.kafkaBrokers,
    prefix: "identity_always",
    ddl: `
      CREATE TABLE ids (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, note text);
      CREATE TABLE tagged (code text PRIMARY KEY, n bigint GENERATED ALWAYS AS IDENTITY, note text);
    `,
    captureArgs: ["--config", config],
  });
}, 120_000);

afterAll(async () => {
  await pipeline?.stop();
});

describe("GENERATED ALWAYS identity columns under DEFAULT identity", () => {
  it("replicates inserts, updates, key changes and deletes of GENERATED ALWAYS identity columns under DEFAULT identity", async () => {
    await runSql(
      pipeline.source.url,
      "INSERT INTO ids (note) SELECT 'n' || g FROM generate_series(1, 20) g; INSERT INTO tagged (code, note) SELECT 'c' || g, 'n' FROM generate_series(1, 20) g",
    );
    await runSql(pipeline.source.url, "UPDATE ids SET note = 'changed' WHERE id <= 10");
    await runSql(pipeline.source.url, "UPDATE tagged SET note = 'changed' WHERE code IN ('c1', 'c2', 'c3')");
    // A new key from the identity's sequence: the standby cannot SET it, only re-insert the row with it.
    await runSql(pipeline.source.url, "UPDATE ids SET id = DEFAULT, note = 'moved' WHERE id IN (3, 4)");
    await runSql(pipeline.source.url, "UPDATE tagged SET n = DEFAULT WHERE code = 'c5'");
    await runSql(pipeline.source.url, "UPDATE tagged SET code = 'renamed' WHERE code = 'c6'");
    await runSql(pipeline.source.url, "DELETE FROM ids WHERE id = 5; DELETE FROM tagged WHERE code = 'c7'");
    await pipeline.waitForCatchUp(undefined, 40_000);
    const comparisons = await compareTables(pipeline.source.url, pipeline.standby("i1").db.url, [
      "public.ids",
      "public.tagged",
    ]);
    expect(describeDifferences(comparisons)).toEqual([]);
    expect(pipeline.standby("i1").applier.output()).not.toMatch(/"level":"(error|warn)"/);
  });
});
