// status --json against a live pipeline: a standby's lag grows while its applier is stopped and goes back
// to zero after the applier restarts and catches up.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnDiffrelay } from "../support/child-process.js";
import { ReplicationPipeline, stopProcess } from "../support/replication-pipeline.js";
import { runSql, testServices } from "../support/services.js";

describe("status", () => {
  let pipeline: ReplicationPipeline;

  beforeAll(async () => {
    const services = testServices();
    pipeline = await ReplicationPipeline.start({
      sourceServerUrl: services.sourceUrl,
      standbys: [{ name: "st1", serverUrl: services.standbyUrls[0] as string }],
      brokers: services.kafkaBrokers,
      prefix: "status",
      ddl: "CREATE TABLE t (id bigint PRIMARY KEY, v text);",
    });
  });

  afterAll(async () => {
    await pipeline?.stop();
  });

  const status = async () => {
    const p = spawnDiffrelay([
      "status",
      "--json",
      "--source-url",
      pipeline.source.url,
      "--standbys",
      `st1=${pipeline.standby("st1").db.url}`,
      "--brokers",
      pipeline.options.brokers.join(","),
      "--topic",
      pipeline.topic,
      "--slot",
      pipeline.slot,
    ]);
    const exit = await p.exited;
    expect(exit.code, p.output()).toBe(0);
    const line = p
      .output()
      .split("\n")
      .find((l) => l.startsWith('{"time"'));
    return JSON.parse(line ?? "null");
  };

  it("reports lag growing while the applier is stopped and shrinking after it restarts", async () => {
    await runSql(pipeline.source.url, "INSERT INTO t SELECT g, 'x' FROM generate_series(1, 100) g");
    await pipeline.waitForCatchUp();
    const before = await status();
    expect(before.source.slotExists).toBe(true);
    expect(Number(before.source.topicEndOffset)).toBeGreaterThan(0);
    expect(before.standbys[0]).toMatchObject({ name: "st1", offsetLag: 0, timeLagSeconds: 0, error: null });

    await stopProcess(pipeline.standby("st1").applier);
    for (let i = 0; i < 5; i++)
      await runSql(pipeline.source.url, "INSERT INTO t VALUES ($1, 'y')", [1000 + i]);
    // The capture publishes them (possibly batched into one message); wait until the topic shows them.
    let stopped = await status();
    const deadline = Date.now() + 30_000;
    while (stopped.standbys[0].offsetLag < 1 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 300));
      stopped = await status();
    }
    expect(stopped.standbys[0].offsetLag).toBeGreaterThanOrEqual(1);
    expect(stopped.standbys[0].timeLagSeconds).toBeGreaterThan(0);
    await new Promise((r) => setTimeout(r, 1000));
    const later = await status();
    expect(later.standbys[0].timeLagSeconds).toBeGreaterThan(stopped.standbys[0].timeLagSeconds);

    await pipeline.startApplier("st1");
    await pipeline.waitForCatchUp();
    const after = await status();
    expect(after.standbys[0].offsetLag).toBe(0);
    expect(after.standbys[0].timeLagSeconds).toBe(0);
  });
});
