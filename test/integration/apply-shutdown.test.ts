// An operator's SIGTERM (systemd, Kubernetes) must end the applier promptly, whenever it arrives, with its
// position durable: a clean stop is exit 0, and a restart goes on from the stored position.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { DiffrelayProcess, ExitInfo } from "../support/child-process.js";
import { ReplicationPipeline, tail } from "../support/replication-pipeline.js";
import { runSql, testServices } from "../support/services.js";
import { compareTables, describeDifferences } from "../support/table-compare.js";

const STOP_WITHIN_MS = 15_000;

async function exitWithin(p: DiffrelayProcess, ms: number): Promise<ExitInfo | "still running"> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<"still running">((resolve) => {
    timer = setTimeout(() => resolve("still running"), ms);
  });
  try {
    return await Promise.race([p.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

describe("apply: SIGTERM", () => {
  let pipeline: ReplicationPipeline;

  beforeAll(async () => {
    const services = testServices();
    pipeline = await ReplicationPipeline.start({
      sourceServerUrl: services.sourceUrl,
      standbys: [{ name: "s1", serverUrl: services.standbyUrls[0] as string }],
      brokers: services.kafkaBrokers,
      prefix: "apply_sigterm",
      ddl: "CREATE TABLE items (id integer PRIMARY KEY, label text);",
    });
  });

  afterAll(async () => {
    await pipeline?.stop();
  });

  it("stops a caught-up applier with exit 0, and a restart resumes from its position", async () => {
    await runSql(pipeline.source.url, "INSERT INTO items SELECT g, 'first' FROM generate_series(1, 100) g");
    await pipeline.waitForCatchUp();
    const applier = pipeline.standby("s1").applier;
    applier.kill("SIGTERM");
    const exit = await exitWithin(applier, STOP_WITHIN_MS);
    expect(exit, tail(applier.output())).toEqual({ code: 0, signal: null });

    await runSql(
      pipeline.source.url,
      "INSERT INTO items SELECT g, 'second' FROM generate_series(101, 150) g",
    );
    await pipeline.startApplier("s1");
    await pipeline.waitForCatchUp();
    const comparison = await compareTables(pipeline.source.url, pipeline.standby("s1").db.url, [
      "public.items",
    ]);
    expect(describeDifferences(comparison)).toEqual([]);
    expect(comparison[0]?.standbyRows).toBe(150);
  });

  // SIGTERM while the applier is still starting (after it has read its position, before it consumes).
  it("stops an applier that is still starting with exit 0", async () => {
    const applier = await pipeline.startApplier("s1");
    // Right after "applying from the standby's position": schema catalog and consumer are starting.
    applier.kill("SIGTERM");
    const exit = await exitWithin(applier, STOP_WITHIN_MS);
    expect(exit, tail(applier.output())).toEqual({ code: 0, signal: null });
  });
});
