// Failover (issue 13, items 4 and 7): kill -9 of the primary's postmaster under a write load whose clients
// log every id whose COMMIT returned, then `diffrelay failover`. With zero-loss mode on, every acknowledged
// id is on the new primary and the standbys agree; without it the report names the possible loss (the
// capture's last known slot lag) and exits 8. The primaries are private clusters (killed, and
// synchronous_standby_names is server-wide); the standbys are databases on the stack's standby servers.
import { afterAll, describe, expect, it } from "vitest";
import { writeUntilDead } from "../support/acknowledged-writes.js";
import { metricsUrl } from "../support/capture-process.js";
import { spawnDiffrelay } from "../support/child-process.js";
import { type PrivatePostgres, startPrivatePostgres } from "../support/private-postgres.js";
import { ReplicationPipeline, stopProcess } from "../support/replication-pipeline.js";
import { testServices, withClient } from "../support/services.js";
import { compareTables, describeDifferences } from "../support/table-compare.js";
import { deleteTopics } from "../support/topic-reader.js";

const TABLES = ["public.acks", "public.pipeline_marker"];
const CLIENTS = 4;
const cleanups: (() => Promise<void>)[] = [];

afterAll(async () => {
  // In order: the primary goes first, since with zero-loss on and no capture, dropping its database would wait.
  for (const cleanup of cleanups) await cleanup().catch(() => undefined);
});

async function scenario(zeroLoss: boolean) {
  const services = testServices();
  const primary: PrivatePostgres = await startPrivatePostgres(zeroLoss ? "failover-zl" : "failover");
  cleanups.push(() => primary.destroy());
  // Commits wait for a synchronous standby only with synchronous_commit on (the stack's default is off).
  if (zeroLoss) await primary.configure({ synchronous_commit: "on" });
  const pipeline = await ReplicationPipeline.start({
    sourceServerUrl: primary.url,
    standbys: [
      { name: "s1", serverUrl: services.standbyUrls[0] as string },
      { name: "s2", serverUrl: services.standbyUrls[1] as string },
    ],
    brokers: services.kafkaBrokers,
    prefix: zeroLoss ? "failover_zl" : "failover",
    ddl: "CREATE TABLE acks (id bigint PRIMARY KEY, written_by int NOT NULL);",
    captureArgs: zeroLoss ? ["--zero-loss"] : [],
  });
  cleanups.push(async () => {
    await pipeline.stop();
    await deleteTopics(services.kafkaBrokers, [`${pipeline.topic}.e1`, `${pipeline.topic}.e1.schemas`]);
  });
  await pipeline.capture.waitForOutput(/"logical replication started"/, 60_000);
  const statusUrl = metricsUrl(pipeline.capture).replace(/\/metrics$/, "/status");

  const writers = writeUntilDead(pipeline.source.url, CLIENTS);
  await new Promise((r) => setTimeout(r, 2500));
  await primary.kill();
  const acknowledged = await writers;
  expect(acknowledged.length).toBeGreaterThan(50);

  // Standalone processes: the appliers are stopped (failover drains the standbys itself); the old capture
  // keeps running, reconnecting, and serves its last known state.
  for (const s of pipeline.standbys.values()) await stopProcess(s.applier);
  const s1 = pipeline.standby("s1").db.url;
  const s2 = pipeline.standby("s2").db.url;
  const run = spawnDiffrelay([
    "failover",
    "--to",
    "s1",
    "--standbys",
    `s1=${s1},s2=${s2}`,
    "--source-url",
    pipeline.source.url,
    "--capture-status-url",
    statusUrl,
    "--brokers",
    services.kafkaBrokers.join(","),
    "--topic",
    pipeline.topic,
    "--slot",
    pipeline.slot,
    "--publication",
    pipeline.publication,
    "--json",
  ]);
  const exit = await run.exited;
  await stopProcess(pipeline.capture);
  const line = run
    .output()
    .split("\n")
    .find((l) => l.startsWith('{"outcome"'));
  if (!line) throw new Error(`failover printed no report:\n${run.output()}`);
  const report = JSON.parse(line);

  expect(describeDifferences(await compareTables(s1, s2, TABLES))).toEqual([]);
  const present = new Set(
    await withClient(s1, async (c) =>
      (await c.query<{ id: string }>("SELECT id::text FROM acks")).rows.map((r) => r.id),
    ),
  );
  const missing = acknowledged.filter((id) => !present.has(id));
  // The counts for the closing note.
  console.log(
    `failover, zero-loss ${zeroLoss ? "on" : "off"}: ${acknowledged.length} commits acknowledged, ${missing.length} missing on the new primary, report: ${JSON.stringify(report.mayBeLost)}`,
  );
  return { exit, output: run.output(), report, acknowledged, missing };
}

describe("diffrelay failover after kill -9 of the primary", () => {
  it("with zero-loss mode on: every commit a client saw acknowledged is on the new primary, standbys equal, exit 0", async () => {
    const r = await scenario(true);
    expect(r.exit.code, r.output).toBe(0);
    expect(r.report).toMatchObject({
      outcome: "promoted",
      promoted: "s1",
      newEpoch: 1,
      repointed: ["s2"],
      unreachable: [],
      oldPrimary: { reachable: false, lastKnown: { zeroLoss: "required" } },
      mayBeLost: { acknowledgedCommits: "none", slotLagBytes: 0 },
    });
    expect(r.missing, `${r.missing.length} of ${r.acknowledged.length} acknowledged ids missing`).toEqual([]);
  });

  it("with zero-loss mode off: it reports the possible loss (last known slot lag) and exits 8", async () => {
    const r = await scenario(false);
    expect(r.exit.code, r.output).toBe(8);
    expect(r.report).toMatchObject({
      outcome: "promoted-possible-loss",
      promoted: "s1",
      repointed: ["s2"],
      oldPrimary: { reachable: false, lastKnown: { zeroLoss: "off" } },
      mayBeLost: { acknowledgedCommits: "possible" },
    });
    expect(typeof r.report.mayBeLost.slotLagBytes).toBe("number");
    expect(r.report.mayBeLost.why).toMatch(/last known slot lag was \d+ bytes/);
  });
});
