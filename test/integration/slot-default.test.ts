// Two databases of one primary captured with the default slot: slots are server-wide, so the default
// names the database. A slot under the old default name ("diffrelay") that belongs to a database is
// still that database's capture slot, with a note in the log.
import { afterAll, describe, expect, it } from "vitest";
import { defaultSlotName } from "../../connectors/postgres-source/index.js";
import { type DiffrelayProcess, spawnDiffrelay } from "../support/child-process.js";
import { stopProcess } from "../support/replication-pipeline.js";
import {
  createTestDatabase,
  runSql,
  type TestDatabase,
  testServices,
  uniqueName,
} from "../support/services.js";

const services = testServices();
const databases: TestDatabase[] = [];
const processes: DiffrelayProcess[] = [];

afterAll(async () => {
  await Promise.all(processes.map((p) => stopProcess(p)));
  await Promise.allSettled(databases.map((d) => d.drop()));
});

function capture(db: TestDatabase): DiffrelayProcess {
  const p = spawnDiffrelay([
    "capture",
    "--source-url",
    db.url,
    "--brokers",
    services.kafkaBrokers.join(","),
    "--topic",
    uniqueName("slot_default_topic"),
    "--metrics-port",
    "0",
  ]);
  processes.push(p);
  return p;
}

describe("the default slot name", () => {
  it("lets two databases of one server be captured without --slot, and keeps an old-default slot", async () => {
    const upgraded = await createTestDatabase(services.sourceUrl, "slot_old");
    const added = await createTestDatabase(services.sourceUrl, "slot_new");
    databases.push(upgraded, added);
    for (const db of databases) await runSql(db.url, "CREATE TABLE t (id int PRIMARY KEY)");
    // What a capture of an earlier version left: its slot under the old default name.
    await runSql(upgraded.url, "SELECT pg_create_logical_replication_slot('diffrelay', 'pgoutput')");

    const first = capture(upgraded);
    await first.waitForOutput(/"capture publishing"/, 60_000);
    expect(first.output()).toMatch(/using the existing slot \\"diffrelay\\" of database/);
    const second = capture(added);
    await second.waitForOutput(/"capture publishing"/, 60_000);

    // The walsender attaches to the slot just after the capture reports publishing.
    const slots = () =>
      runSql<{ slot_name: string; database: string; active: boolean }>(
        services.sourceUrl,
        "SELECT slot_name, database, active FROM pg_replication_slots WHERE database = ANY($1) ORDER BY slot_name",
        [[upgraded.name, added.name]],
      ).then((r) => r.rows);
    let rows = await slots();
    for (let i = 0; i < 100 && !rows.every((r) => r.active); i++) {
      await new Promise((r) => setTimeout(r, 100));
      rows = await slots();
    }
    expect(rows).toEqual(
      [
        { slot_name: "diffrelay", database: upgraded.name, active: true },
        { slot_name: defaultSlotName(added.name), database: added.name, active: true },
      ].sort((a, b) => a.slot_name.localeCompare(b.slot_name)),
    );
    expect(defaultSlotName(added.name)).toBe(`diffrelay_${added.name}`);
  });
});
