// Acceptance: "the copies are exact". A real source, capture, Kafka and two appliers (separate processes,
// each on its own standby server) carry every type, a PK-less table, a partitioned table and hostile
// identifiers, and every kind of change, to both standbys; afterwards each standby equals the source.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReplicationPipeline } from "../support/replication-pipeline.js";
import {
  TYPE_MATRIX_CHANGES,
  TYPE_MATRIX_DDL,
  TYPE_MATRIX_ROWS,
  TYPE_MATRIX_TABLES,
} from "../support/schema-fixtures.js";
import { runSql, testServices } from "../support/services.js";
import { compareTables, describeDifferences } from "../support/table-compare.js";

describe("apply: the copies are exact", () => {
  let pipeline: ReplicationPipeline;

  beforeAll(async () => {
    const services = testServices();
    expect(services.standbyUrls.length).toBeGreaterThanOrEqual(2);
    pipeline = await ReplicationPipeline.start({
      sourceServerUrl: services.sourceUrl,
      standbys: [
        { name: "s1", serverUrl: services.standbyUrls[0] as string },
        { name: "s2", serverUrl: services.standbyUrls[1] as string },
      ],
      brokers: services.kafkaBrokers,
      prefix: "apply_exact",
      ddl: TYPE_MATRIX_DDL,
    });
  });

  afterAll(async () => {
    await pipeline?.stop();
  });

  it("carries the type matrix rows to both standbys exactly", async () => {
    await runSql(pipeline.source.url, TYPE_MATRIX_ROWS);
    await pipeline.waitForCatchUp();
    for (const name of ["s1", "s2"]) {
      const comparison = await compareTables(
        pipeline.source.url,
        pipeline.standby(name).db.url,
        TYPE_MATRIX_TABLES,
      );
      expect(describeDifferences(comparison), `standby ${name}`).toEqual([]);
      // The fixture really filled every table (an empty == empty comparison would prove nothing).
      expect(comparison.map((c) => [c.table, c.standbyRows])).toEqual([
        ["public.every_type", 3],
        ["public.no_key", 3],
        ["public.measurements", 2],
        [TYPE_MATRIX_TABLES[3], 1],
      ]);
    }
  });

  it("applies every change of every kind and both standbys still equal the source", async () => {
    // Each change is its own source transaction, then one transaction with all of them again where
    // they still apply, so both single and grouped transactions are exercised.
    for (const sql of TYPE_MATRIX_CHANGES) await runSql(pipeline.source.url, sql);
    await runSql(
      pipeline.source.url,
      `BEGIN;
       UPDATE every_type SET num = num + 1, txt = txt || ' again' WHERE id = 1;
       UPDATE every_type SET id = 20 WHERE id = 10;
       INSERT INTO no_key VALUES (5, 'five', '{"y": [1, 2]}'), (5, 'five', '{"y": [1, 2]}');
       DELETE FROM no_key WHERE ctid = (SELECT ctid FROM no_key WHERE a = 5 LIMIT 1);
       INSERT INTO measurements VALUES (4, '2025-02-02', 4.25);
       UPDATE measurements SET at = '2025-07-07' WHERE id = 3;
       UPDATE "Odd Schema"."Mixed Case ""quoted"" .dots" SET "Key Col" = 2, "value; DROP TABLE x; --" = NULL;
       COMMIT;`,
    );
    await pipeline.waitForCatchUp();
    const sourceCounts = await runSql<{ n: string }>(
      pipeline.source.url,
      "SELECT (SELECT count(*) FROM every_type) + (SELECT count(*) FROM no_key) + (SELECT count(*) FROM measurements) AS n",
    );
    expect(Number(sourceCounts.rows[0]?.n)).toBeGreaterThan(0);
    for (const name of ["s1", "s2"]) {
      const comparison = await compareTables(
        pipeline.source.url,
        pipeline.standby(name).db.url,
        TYPE_MATRIX_TABLES,
      );
      expect(describeDifferences(comparison), `standby ${name}`).toEqual([]);
      // Spot checks of what the changes must have produced, on the standby itself.
      const standbyUrl = pipeline.standby(name).db.url;
      const ids = await runSql<{ id: string }>(standbyUrl, "SELECT id::text FROM every_type ORDER BY id");
      expect(ids.rows.map((r) => r.id)).toEqual(["1", "20"]);
      const toast = await runSql<{ len: number; tail: string }>(
        standbyUrl,
        "SELECT length(big_toast) AS len, right(big_toast, 4) AS tail FROM every_type WHERE id = 1",
      );
      expect(toast.rows[0]).toEqual({ len: 9 * 20000 + 4, tail: "more" });
      const parts = await runSql<{ part: string; id: string }>(
        standbyUrl,
        "SELECT tableoid::regclass::text AS part, id::text FROM measurements ORDER BY id",
      );
      expect(parts.rows).toEqual([
        { part: "measurements_2025", id: "3" },
        { part: "measurements_2025", id: "4" },
      ]);
    }
  });

  // Guards the guard: the comparison the acceptance tests rely on sees one duplicated PK-less row.
  it("the comparison reports a row applied twice on a PK-less table", async () => {
    const { db, applier } = pipeline.standby("s1");
    applier.kill("SIGTERM");
    await applier.exited;
    await runSql(db.url, "INSERT INTO no_key SELECT * FROM no_key WHERE a = 5");
    const comparison = await compareTables(pipeline.source.url, db.url, ["public.no_key"]);
    expect(comparison[0]).toMatchObject({
      equal: false,
      onlyOnSource: [],
      onlyOnStandby: [{ row: '(5,five,"{""y"": [1, 2]}")', count: 1 }],
    });
    expect((comparison[0]?.standbyRows ?? 0) - (comparison[0]?.sourceRows ?? 0)).toBe(1);
  });
});
