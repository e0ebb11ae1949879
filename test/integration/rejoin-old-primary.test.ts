import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { startPostgres, stopPostgres } from "../../scripts/stack/index.js";
import { type DiffrelayProcess, spawnDiffrelay } from "../support/child-process.js";
import {
  exitWithin,
  MARKER_TABLE,
  ReplicationPipeline,
  stopProcess,
  tail,
} from "../support/replication-pipeline.js";
import { runSql, testServices, withClient } from "../support/services.js";
import { compareTables, describeDifferences } from "../support/table-compare.js";

const TABLES = ["public.accounts", "public.tags", MARKER_TABLE];
const DDL =
  "CREATE TABLE accounts (id bigserial PRIMARY KEY, v integer NOT NULL, note text); CREATE TABLE tags (name text, n integer);" +
  "INSERT INTO accounts (v) SELECT g FROM generate_series(1, 2000) g;";
const started: DiffrelayProcess[] = [];
const pipelines: ReplicationPipeline[] = [];

afterAll(async () => {
  await Promise.all(started.map((p) => stopProcess(p)));
  await Promise.all(pipelines.map((p) => p.stop()));
});

function run(args: string[]): DiffrelayProcess {
  const p = spawnDiffrelay(args, {});
  started.push(p);
  return p;
}

/** Commits `sql` in one transaction on `url`; returns its xid (the report names each transaction's). */
async function commit(url: string, sql: string): Promise<number> {
  return withClient(url, async (c) => {
    // The client's commit is acknowledged only once its WAL is flushed: the kill -9 below must not take it.
    await c.query("SET synchronous_commit = on");
    await c.query("BEGIN");
    const xid = Number((await c.query("SELECT txid_current()::text AS x")).rows[0].x);
    await c.query(sql);
    await c.query("COMMIT");
    return xid;
  });
}

async function waitForRow(url: string, sql: string, what: string, p: DiffrelayProcess): Promise<void> {
  const deadline = Date.now() + 60_000;
  while (!(await runSql(url, sql)).rowCount) {
    if (Date.now() > deadline) throw new Error(`${what} did not arrive:\n${tail(p.output())}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const common = (pipeline: ReplicationPipeline) => [
  "--brokers",
  testServices().kafkaBrokers.join(","),
  "--topic",
  pipeline.topic,
  "--slot",
  pipeline.slot,
  "--publication",
  pipeline.publication,
];

async function startPipeline(prefix: string): Promise<ReplicationPipeline> {
  const services = testServices();
  const pipeline = await ReplicationPipeline.start({
    sourceServerUrl: services.sourceUrl,
    standbys: [{ name: "s1", serverUrl: services.standbyUrls[0] as string }],
    brokers: services.kafkaBrokers,
    prefix,
    ddl: DDL,
  });
  pipelines.push(pipeline);
  return pipeline;
}

function promote(pipeline: ReplicationPipeline, extra: string[]): DiffrelayProcess {
  const s1 = pipeline.standby("s1").db.url;
  return run(["promote", "--standby-name", "s1", "--standby-url", s1, ...extra, ...common(pipeline)]);
}

function startNewCapture(pipeline: ReplicationPipeline): DiffrelayProcess {
  const s1 = pipeline.standby("s1").db.url;
  return run(["capture", "--source-url", s1, "--epoch", "1", "--metrics-port", "0", ...common(pipeline)]);
}

/** The old primary's name as a standby: one per test, so no applier of another test counts as its own. */
const oldName = (pipeline: ReplicationPipeline) => `old_${pipeline.options.prefix}`;

function rejoin(pipeline: ReplicationPipeline, extra: string[] = []): DiffrelayProcess {
  return run([
    "rejoin",
    "--standby-url",
    pipeline.source.url,
    "--standby-name",
    oldName(pipeline),
    "--source-url",
    pipeline.standby("s1").db.url,
    "--epoch",
    "1",
    "--json",
    ...extra,
    ...common(pipeline),
  ]);
}

/** The rejoined old primary's applier, on the new primary's topic. */
async function follow(pipeline: ReplicationPipeline): Promise<DiffrelayProcess> {
  const apply = run([
    "apply",
    "--standby-url",
    pipeline.source.url,
    "--standby-name",
    oldName(pipeline),
    "--epoch",
    "1",
    "--metrics-port",
    "0",
    ...common(pipeline).slice(0, 4),
  ]);
  await apply.waitForOutput(/applying from the standby's position/, 60_000);
  return apply;
}

function verify(pipeline: ReplicationPipeline): DiffrelayProcess {
  return run([
    "verify",
    "--source-url",
    pipeline.standby("s1").db.url,
    "--standby-url",
    pipeline.source.url,
    "--standby-name",
    oldName(pipeline),
    "--epoch",
    "1",
    ...common(pipeline),
  ]);
}

// biome-ignore lint/suspicious/noExplicitAny: the report is rejoin's JSON, checked field by field.
function reportOf(p: DiffrelayProcess): any {
  const line = p
    .output()
    .split("\n")
    .find((l) => l.startsWith('{"standbyName"'));
  if (!line) throw new Error(`no report in rejoin's output:\n${tail(p.output())}`);
  return JSON.parse(line);
}

describe("diffrelay rejoin", () => {
  it("the killed old primary reports exactly its unpublished transactions, is rewound without copying, refuses client writes, follows the new primary and verifies equal", async () => {
    const services = testServices();
    const stack = services.stack;
    if (!stack) throw new Error("this test kills the primary: it needs the local stack (scripts/stack)");
    const pipeline = await startPipeline("rejoin");
    const old = pipeline.source.url;
    const s1 = pipeline.standby("s1").db.url;
    await runSql(old, "UPDATE accounts SET note = 'published' WHERE id <= 10");
    await pipeline.waitForCatchUp();
    await stopProcess(pipeline.standby("s1").applier);

    // The capture dies: what the old primary commits now never reaches Kafka.
    pipeline.capture.kill("SIGKILL");
    await pipeline.capture.exited;
    const lost = [
      await commit(
        old,
        "INSERT INTO accounts (v, note) SELECT -g, 'lost insert' FROM generate_series(1, 3) g",
      ),
      await commit(old, "UPDATE accounts SET v = -5, note = 'lost update' WHERE id = 5"),
      await commit(old, "DELETE FROM accounts WHERE id = 7"),
      await commit(
        old,
        "INSERT INTO tags VALUES ('lost', 1); UPDATE accounts SET note = 'lost again' WHERE id = 2001",
      ),
      await commit(old, "UPDATE accounts SET id = 90000 WHERE id = 8"),
    ];

    await stopPostgres("primary", "kill", { baseDir: stack.baseDir });
    try {
      const promoted = promote(pipeline, ["--source-url", old]);
      expect((await exitWithin(promoted, 90_000)).code, promoted.output()).toBe(0);
      expect(promoted.output()).toMatch(/old primary unreachable/);
    } finally {
      await startPostgres("primary", { baseDir: stack.baseDir });
    }
    const capture = startNewCapture(pipeline);
    await capture.waitForOutput(/"capture publishing"/, 60_000);
    // The new primary writes the same keys: its sequence hands out 2001.. again, 5 and 7 change.
    await runSql(
      s1,
      "INSERT INTO accounts (v, note) SELECT g, 'new epoch' FROM generate_series(1, 3) g; UPDATE accounts SET v = 55 WHERE id = 5; UPDATE accounts SET v = 77 WHERE id = 7; DELETE FROM accounts WHERE id = 9",
    );

    const reportFile = join(mkdtempSync(join(tmpdir(), "rejoin-")), "report.json");
    const rejoined = rejoin(pipeline, ["--report-file", reportFile]);
    expect((await exitWithin(rejoined, 90_000)).code, rejoined.output()).toBe(0);
    const report = reportOf(rejoined);
    expect(JSON.parse(readFileSync(reportFile, "utf8")).unpublished).toEqual(report.unpublished);
    expect(report.method).toBe("rewind");
    expect(report.tablesReseeded).toEqual([]);
    expect(report.unpublished.map((t: { xid: number }) => t.xid)).toEqual(lost);
    const lsns = report.unpublished.map((t: { commitLsn: string }) => t.commitLsn);
    expect(lsns.every((l: string) => /^[0-9A-F]+\/[0-9A-F]+$/.test(l))).toBe(true);
    const changes = report.unpublished.map((t: { changes: unknown[] }) => t.changes);
    expect(changes).toEqual([
      [2001, 2002, 2003].map((id) => ({ op: "insert", table: "public.accounts", key: { id: String(id) } })),
      [{ op: "update", table: "public.accounts", key: { id: "5" } }],
      [{ op: "delete", table: "public.accounts", key: { id: "7" } }],
      [
        { op: "insert", table: "public.tags", key: { name: "lost", n: "1" } },
        { op: "update", table: "public.accounts", key: { id: "2001" } },
      ],
      [{ op: "update", table: "public.accounts", key: { id: "8" }, newKey: { id: "90000" } }],
    ]);
    expect(report.rowsRewound).toBe(8);
    expect(report.droppedSlot).toBe(pipeline.slot);
    expect(rejoined.output()).toMatch(/never reached the new primary/);
    // The record is on the old primary too, and its slot (which pinned WAL) is gone.
    const stored = await runSql<{ report: { unpublished: unknown }; repaired_at: Date | null }>(
      old,
      "SELECT report, repaired_at FROM diffrelay.rejoin_report",
    );
    expect(stored.rows[0]?.report.unpublished).toEqual(report.unpublished);
    expect(stored.rows[0]?.repaired_at).not.toBeNull();
    expect(
      (await runSql(old, "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", [pipeline.slot]))
        .rowCount,
    ).toBe(0);
    // A client can no longer write there.
    await expect(runSql(old, "INSERT INTO accounts (v) VALUES (1)")).rejects.toThrow(/read-only transaction/);

    const apply = await follow(pipeline);
    await runSql(s1, "UPDATE accounts SET v = 555 WHERE id = 5; INSERT INTO accounts (v) VALUES (1)");
    await runSql(s1, `INSERT INTO ${MARKER_TABLE} (id) VALUES (1000)`);
    await waitForRow(old, `SELECT 1 FROM ${MARKER_TABLE} WHERE id = 1000`, "the new primary's marker", apply);
    expect(describeDifferences(await compareTables(s1, old, TABLES))).toEqual([]);
    const verified = verify(pipeline);
    expect((await exitWithin(verified, 40_000)).code, verified.output()).toBe(0);
    expect(verified.output()).toMatch(/standby equals the source/);
    // diffrelay status names what the old primary lost, as long as its record is there.
    const status = run([
      "status",
      "--standby-url",
      old,
      "--standby-name",
      oldName(pipeline),
      "--epoch",
      "1",
      ...common(pipeline).slice(0, 4),
    ]);
    expect((await exitWithin(status, 30_000)).code, status.output()).toBe(0);
    expect(status.output()).toContain(
      `rejoined as a former primary (rewind, diffrelay.rejoin_report id ${report.reportId}): 5 of its transactions never reached the new primary (commit LSNs ${lsns.join(", ")})`,
    );
    // Sequences end no lower than the new primary's.
    const seq = "SELECT last_value::text AS v FROM accounts_id_seq";
    const [onOld, onNew] = [await runSql<{ v: string }>(old, seq), await runSql<{ v: string }>(s1, seq)];
    expect(BigInt(onOld.rows[0]?.v as string)).toBeGreaterThanOrEqual(BigInt(onNew.rows[0]?.v as string));
  });

  it("re-seeds, saying why, when an unpublished transaction changed the schema", async () => {
    const pipeline = await startPipeline("rejoin_ddl");
    const old = pipeline.source.url;
    await pipeline.waitForCatchUp();
    await stopProcess(pipeline.standby("s1").applier);
    pipeline.capture.kill("SIGKILL");
    await pipeline.capture.exited;
    const lost = [
      await commit(old, "ALTER TABLE accounts ADD COLUMN extra integer"),
      await commit(old, "UPDATE accounts SET extra = 1, v = 0 WHERE id <= 3"),
    ];

    const promoted = promote(pipeline, []);
    expect((await exitWithin(promoted, 90_000)).code, promoted.output()).toBe(0);
    const capture = startNewCapture(pipeline);
    await capture.waitForOutput(/"capture publishing"/, 60_000);

    const rejoined = rejoin(pipeline);
    expect((await exitWithin(rejoined, 90_000)).code, rejoined.output()).toBe(0);
    const report = reportOf(rejoined);
    expect(report.method).toBe("reseed");
    expect(report.unpublished.map((t: { xid: number }) => t.xid)).toEqual(lost);
    expect(report.unpublished[0].ddl).toEqual(["ALTER TABLE accounts ADD COLUMN extra integer"]);
    expect(report.reseedReasons).toEqual([
      expect.stringMatching(/changed the schema \(ALTER TABLE accounts ADD COLUMN extra integer\)/),
    ]);
    expect(report.tablesReseeded).toEqual(expect.arrayContaining(["public.accounts", "public.tags"]));
    expect(rejoined.output()).toMatch(/cannot rewind the old primary: re-seeding it/);
    const apply = await follow(pipeline);
    const s1 = pipeline.standby("s1").db.url;
    await runSql(
      s1,
      `UPDATE accounts SET v = 42 WHERE id = 1; INSERT INTO ${MARKER_TABLE} (id) VALUES (1000)`,
    );
    await waitForRow(old, `SELECT 1 FROM ${MARKER_TABLE} WHERE id = 1000`, "the new primary's marker", apply);
    const verified = verify(pipeline);
    expect((await exitWithin(verified, 40_000)).code, verified.output()).toBe(0);
  });
});
