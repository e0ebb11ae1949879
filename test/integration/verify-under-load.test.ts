// verify while the source keeps writing fast: the applier pauses at verify's snapshot
// (diffrelay.apply_pause), so the first attempt finds the standby exactly there.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReplicationPipeline } from "../support/replication-pipeline.js";
import { testServices, withClient } from "../support/services.js";

let pipeline: ReplicationPipeline;

beforeAll(async () => {
  const services = testServices();
  pipeline = await ReplicationPipeline.start({
    sourceServerUrl: services.sourceUrl,
    standbys: [{ name: "w1", serverUrl: services.standbyUrls[0] as string }],
    brokers: services.kafkaBrokers,
    prefix: "verify_load",
    ddl: "CREATE TABLE counters (id int PRIMARY KEY, n bigint NOT NULL); INSERT INTO counters SELECT g, 0 FROM generate_series(1, 100) g; CREATE TABLE ticks (at timestamptz, n int);",
  });
}, 120_000);

afterAll(async () => {
  await pipeline?.stop();
});

describe("verify under a write load", () => {
  it("compares at one exact point on the first attempt while writes continue, and the applier resumes", async () => {
    let stop = false;
    let committed = 0;
    const writers = [1, 2].map(() =>
      withClient(pipeline.source.url, async (c) => {
        while (!stop) {
          await c.query(
            "WITH u AS (UPDATE counters SET n = n + 1 WHERE id = (random() * 99)::int + 1 RETURNING n) INSERT INTO ticks SELECT now(), n FROM u",
          );
          committed++;
        }
      }),
    );
    try {
      await new Promise((r) => setTimeout(r, 1000));
      const { code, output, report } = await pipeline.verify("w1", {
        extraArgs: ["--max-attempts", "2", "--attempt-timeout-seconds", "20"],
      });
      expect(code, `${output}\napplier:\n${pipeline.standby("w1").applier.output().slice(-3000)}`).toBe(0);
      expect(report.equal).toBe(true);
      expect(report.attempts).toBe(1);
      expect(pipeline.standby("w1").applier.output()).toMatch(/"paused for verify"/);
    } finally {
      stop = true;
      await Promise.all(writers);
    }
    expect(committed).toBeGreaterThan(100);
    // The pause was lifted: the applier catches up with everything written during verify.
    await pipeline.waitForCatchUp();
  });
});
