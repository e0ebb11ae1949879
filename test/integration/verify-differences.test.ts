// verify against a live pipeline: equal copies exit 0; a changed value, a missing row and an extra row
// made directly on the standby are found, named, and exit 6, while the applier keeps running.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReplicationPipeline } from "../support/replication-pipeline.js";
import { runSql, testServices } from "../support/services.js";

const DDL = `
CREATE TABLE accounts (id bigint PRIMARY KEY, owner text, balance numeric);
CREATE TABLE audit (who text, what text);
`;

describe("verify", () => {
  let pipeline: ReplicationPipeline;

  beforeAll(async () => {
    const services = testServices();
    pipeline = await ReplicationPipeline.start({
      sourceServerUrl: services.sourceUrl,
      standbys: [{ name: "v1", serverUrl: services.standbyUrls[0] as string }],
      brokers: services.kafkaBrokers,
      prefix: "verify",
      ddl: DDL,
      // Frequent heartbeats let the idle capture confirm past verify's snapshot quickly.
      captureArgs: ["--heartbeat-interval-ms", "500"],
    });
    await runSql(
      pipeline.source.url,
      `INSERT INTO accounts SELECT g, 'owner ' || g, g * 1.5 FROM generate_series(1, 30000) g;
       INSERT INTO audit SELECT 'u' || (g % 5), 'did ' || (g % 3) FROM generate_series(1, 300) g;
       ANALYZE accounts;`,
    );
    await pipeline.waitForCatchUp();
  });

  afterAll(async () => {
    await pipeline?.stop();
  });

  const verify = () => pipeline.verify("v1");

  it("exits 0 when the standby equals the source", async () => {
    const { code, output, report } = await verify();
    expect(code, output).toBe(0);
    expect(report.equal).toBe(true);
    expect(report.tables.map((t: { table: string; sourceRows: number }) => [t.table, t.sourceRows])).toEqual(
      expect.arrayContaining([
        ["public.accounts", 30000],
        ["public.audit", 300],
      ]),
    );
  });

  it("names a changed value, a missing row and an extra row, and exits 6", async () => {
    const standbyUrl = pipeline.standby("v1").db.url;
    // Made on the standby alone, so the source and the applier know nothing of them.
    await runSql(standbyUrl, "UPDATE accounts SET balance = -1 WHERE id = 1234");
    await runSql(standbyUrl, "DELETE FROM accounts WHERE id = 777");
    await runSql(standbyUrl, "INSERT INTO accounts VALUES (999999, 'intruder', 0)");
    await runSql(standbyUrl, "INSERT INTO audit VALUES ('ghost', 'extra')");
    // Writes keep flowing through the pipeline meanwhile.
    await runSql(pipeline.source.url, "INSERT INTO accounts VALUES (40000, 'late', 1)");
    const { code, output, report } = await verify();
    expect(code, output).toBe(6);
    const accounts = report.tables.find((t: { table: string }) => t.table === "public.accounts");
    expect(accounts.changed).toEqual([
      { key: "(1234)", source: '(1234,"owner 1234",1851.0)', standby: '(1234,"owner 1234",-1)' },
    ]);
    expect(accounts.missing.map((m: { key: string }) => m.key)).toEqual(["(777)"]);
    expect(accounts.extra.map((m: { key: string }) => m.key)).toEqual(["(999999)"]);
    const audit = report.tables.find((t: { table: string }) => t.table === "public.audit");
    expect(audit.extra).toEqual([{ key: "(ghost,extra)", row: "(ghost,extra)", count: 1 }]);
    expect(audit.missing).toEqual([]);
  });
});
