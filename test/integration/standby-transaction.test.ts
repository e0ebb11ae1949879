// The standby transaction's commit on a real standby: the position and the COMMIT leave in one
// round trip, and a position that cannot be written commits nothing of what it covers. With deferred
// commands, a whole group takes two round trips: its BEGIN and statements, then its position and COMMIT;
// handed the position's commit too, the applier sends the whole group in one, the standby checking each
// row count itself, and anything it refuses is rolled back and applied again in separate exchanges.
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApplyMetrics } from "../../connectors/postgres-standby/apply-metrics.js";
import { DeferredCommands } from "../../connectors/postgres-standby/deferred-commands.js";
import { DriftError, type SourcePosition } from "../../connectors/postgres-standby/drift-error.js";
import {
  type ApplyPosition,
  positionCommit,
  readPosition,
} from "../../connectors/postgres-standby/position-store.js";
import { PgStandbyTransaction } from "../../connectors/postgres-standby/standby-transaction.js";
import { TransactionApplier } from "../../connectors/postgres-standby/transaction-applier.js";
import type { Change } from "../../src/change/change-model.js";
import { loadMigrations, runMigrations } from "../../src/migrations/migration-runner.js";
import { del, failure, ins, SourceRelations, upd } from "../support/applier-changes.js";
import { createTestDatabase, type TestDatabase, testServices } from "../support/services.js";

let db: TestDatabase;
let client: pg.Client;
let observer: pg.Client;
let queries: string[] = [];

const position = (topic: string, nextOffset: bigint): ApplyPosition => ({
  topic,
  partition: 0,
  nextOffset,
  lastCommitLsn: 0x2_0000_1f28n,
  lastCommitTimeMicros: 1_764_590_000_123_456n,
  sourceId: 0x00ab_cdef_0123_4567n,
  epoch: 2,
});

beforeAll(async () => {
  const services = testServices();
  db = await createTestDatabase(services.standbyUrls[0] ?? services.sourceUrl, "standby_tx");
  client = new pg.Client({ connectionString: db.url });
  observer = new pg.Client({ connectionString: db.url });
  await client.connect();
  await observer.connect();
  await runMigrations(client, loadMigrations("standby"));
  await client.query("CREATE TABLE t (id int PRIMARY KEY)");
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  // Every query the transaction sends, as text: each one is a round trip to the standby.
  (client as unknown as { query: (...args: unknown[]) => unknown }).query = (...args: unknown[]) => {
    const first = args[0];
    queries.push(typeof first === "string" ? first : String((first as { text: string }).text));
    return query(...args);
  };
});

afterAll(async () => {
  await observer?.end();
  await client?.end();
  await db?.drop();
});

/** A table of four rows (1 'a' … 4 'd') with a UNIQUE column, on the standby and as the source defines it. */
async function keyValueTable(sources: SourceRelations, name: string) {
  await client.query(`CREATE TABLE ${name} (id integer PRIMARY KEY, code text NOT NULL UNIQUE)`);
  await client.query(`INSERT INTO ${name} VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd')`);
  return sources.relation(
    "public",
    name,
    [
      ["id", "integer"],
      ["code", "text"],
    ],
    ["id"],
  );
}

describe("PgStandbyTransaction.commit", () => {
  it("writes the position and commits in one round trip; both are visible together afterwards", async () => {
    const tx = new PgStandbyTransaction(client, "standby-a");
    await tx.begin();
    await client.query("INSERT INTO t VALUES (1)");
    queries = [];
    const written = position("diffrelay.one-trip", 42n);
    await tx.commit(written);
    expect(queries).toHaveLength(1);
    expect((await observer.query("SELECT id FROM t")).rows).toEqual([{ id: 1 }]);
    expect(await readPosition(observer, "diffrelay.one-trip", 0)).toEqual(written);
    const row = await observer.query(
      "SELECT standby_name, last_commit_time = to_timestamp(1764590000.123456) AS exact_time FROM diffrelay.apply_position WHERE topic = $1",
      ["diffrelay.one-trip"],
    );
    expect(row.rows).toEqual([{ standby_name: "standby-a", exact_time: true }]);
  });

  it("commits nothing when the position cannot be written: the COMMIT of the same round trip is skipped", async () => {
    await client.query(
      "ALTER TABLE diffrelay.apply_position ADD CONSTRAINT test_small_offsets CHECK (next_offset < 100)",
    );
    const tx = new PgStandbyTransaction(client, "standby-a");
    await tx.begin();
    await client.query("INSERT INTO t VALUES (2)");
    await expect(tx.commit(position("diffrelay.refused", 500n))).rejects.toThrow(/test_small_offsets/);
    // The transaction is still open and aborted, as after a failed statement: only a rollback ends it.
    await expect(client.query("SELECT 1")).rejects.toThrow(/current transaction is aborted/);
    await tx.rollback();
    expect((await observer.query("SELECT id FROM t WHERE id = 2")).rows).toEqual([]);
    expect(await readPosition(observer, "diffrelay.refused", 0)).toBeNull();
  });
});

describe("a group applied with deferred commands", () => {
  const sources = new SourceRelations(1000);
  const source: SourcePosition = {
    commitLsn: 0x3_0000_0100n,
    topic: "diffrelay.grouped",
    partition: 0,
    offset: "7",
  };
  const metrics = createApplyMetrics("standby-transaction-test");
  const applier = new TransactionApplier({ schemas: sources.lookup, maxRowsPerStatement: 100, metrics });
  let offset = 0n;

  /** What the apply service does for one group: BEGIN, the changes, the position with COMMIT. */
  async function applyGroup(changes: Change[]): Promise<ApplyPosition> {
    const deferred = new DeferredCommands();
    const tx = new PgStandbyTransaction(client, "standby-g", deferred);
    const written = position("diffrelay.grouped", ++offset);
    await tx.begin();
    try {
      await applier.applyChanges(client, changes, source, deferred);
      await tx.commit(written);
    } catch (err) {
      await tx.rollback();
      throw err;
    }
    return written;
  }

  it("sends BEGIN and every statement in one round trip, the position and COMMIT in a second; a fallback or a drift keeps today's outcome", async () => {
    await applier.prepareSession(client);
    const kv = await keyValueTable(sources, "kv");
    const state = async () => (await observer.query("SELECT id, code FROM kv ORDER BY id")).rows;

    // The first group reads the table's definition (catalog queries, once per applier); the next ones do not.
    await applyGroup([upd(kv, ["3"], [1], ["c"])]);
    queries = [];
    let written = await applyGroup([
      upd(kv, ["1"], [1], ["a1"]),
      upd(kv, ["2"], [1], ["b1"]),
      del(kv, ["4"]),
      ins(kv, ["5", "e"]),
    ]);
    expect(queries).toHaveLength(2);
    expect(await state()).toEqual([
      { id: 1, code: "a1" },
      { id: 2, code: "b1" },
      { id: 3, code: "c" },
      { id: 5, code: "e" },
    ]);
    expect(await readPosition(observer, "diffrelay.grouped", 0)).toEqual(written);

    // A UNIQUE value swapped between rows: the batch fails, the run is rolled back and applied change by change.
    const fallbacks = (await metrics.batchFallbacks.get()).values[0]?.value ?? 0;
    written = await applyGroup([
      upd(kv, ["1"], [1], ["tmp"]),
      upd(kv, ["2"], [1], ["a1"]),
      upd(kv, ["1"], [1], ["b1"]),
    ]);
    expect((await metrics.batchFallbacks.get()).values[0]?.value).toBe(fallbacks + 1);
    expect((await state()).slice(0, 2)).toEqual([
      { id: 1, code: "b1" },
      { id: 2, code: "a1" },
    ]);
    expect(await readPosition(observer, "diffrelay.grouped", 0)).toEqual(written);

    // Drift in a batch and in a single statement: the error names the change, and nothing of the group commits.
    for (const changes of [
      [upd(kv, ["3"], [1], ["c1"]), upd(kv, ["99"], [1], ["x"])],
      [ins(kv, ["6", "f"]), ins(kv, ["7", "g"]), upd(kv, ["98"], [1], ["y"])],
    ]) {
      const drift = await failure(applyGroup(changes));
      expect(drift).toBeInstanceOf(DriftError);
      expect(drift).toMatchObject({ reason: "row-missing", changeIndex: changes.length - 1 });
      expect(await state()).toEqual([
        { id: 1, code: "b1" },
        { id: 2, code: "a1" },
        { id: 3, code: "c" },
        { id: 5, code: "e" },
      ]);
      expect(await readPosition(observer, "diffrelay.grouped", 0)).toEqual(written);
    }
    // The connection is usable for the next group.
    written = await applyGroup([upd(kv, ["3"], [1], ["c2"])]);
    expect((await state())[2]).toEqual({ id: 3, code: "c2" });
    expect(await readPosition(observer, "diffrelay.grouped", 0)).toEqual(written);
  });
});

describe("a group applied and committed in one round trip", () => {
  const sources = new SourceRelations(2000);
  const source: SourcePosition = {
    commitLsn: 0x4_0000_0100n,
    topic: "diffrelay.one-exchange",
    partition: 0,
    offset: "9",
  };
  let offset = 0n;

  /** What the apply service does for a group whose changes are all pending at its commit. */
  async function applyGroup(applier: TransactionApplier, changes: Change[]) {
    const deferred = new DeferredCommands();
    const tx = new PgStandbyTransaction(client, "standby-o", deferred);
    const written = position("diffrelay.one-exchange", ++offset);
    await tx.begin();
    try {
      const committed = await applier.applyChanges(
        client,
        changes,
        source,
        deferred,
        positionCommit("standby-o", written),
      );
      if (!committed) await tx.commit(written);
      return { written, committed };
    } catch (err) {
      await tx.rollback();
      throw err;
    }
  }

  it("sends BEGIN, the statements, the position and COMMIT in one round trip; a drift, a UNIQUE swap or a logged drift is rolled back and applied as before", async () => {
    const metrics = createApplyMetrics("one-exchange-test");
    const drifts: DriftError[] = [];
    const appliers = {
      stop: new TransactionApplier({ schemas: sources.lookup, maxRowsPerStatement: 100, metrics }),
      log: new TransactionApplier({
        schemas: sources.lookup,
        maxRowsPerStatement: 100,
        metrics,
        onDrift: "log",
        onDriftLogged: (drift) => drifts.push(drift),
      }),
    };
    await appliers.stop.prepareSession(client);
    await appliers.log.prepareSession(client);
    const kv = await keyValueTable(sources, "kv1");
    const state = async () => (await observer.query("SELECT id, code FROM kv1 ORDER BY id")).rows;
    const retries = async () => (await metrics.groupRetries.get()).values[0]?.value ?? 0;
    const committed = async () => readPosition(observer, "diffrelay.one-exchange", 0);

    // The first group reads the table's definition (catalog queries, once per applier); the next ones do not.
    await applyGroup(appliers.stop, [upd(kv, ["3"], [1], ["c"])]);
    queries = [];
    let group = await applyGroup(appliers.stop, [
      upd(kv, ["1"], [1], ["a1"]),
      upd(kv, ["2"], [1], ["b1"]),
      del(kv, ["4"]),
      ins(kv, ["5", "e"]),
    ]);
    expect(group.committed).toBe(true);
    expect(queries).toHaveLength(1);
    expect(await state()).toEqual([
      { id: 1, code: "a1" },
      { id: 2, code: "b1" },
      { id: 3, code: "c" },
      { id: 5, code: "e" },
    ]);
    expect(await committed()).toEqual(group.written);
    expect(await retries()).toBe(0);

    // A UNIQUE value swapped between rows fails the batch: rolled back whole, then applied change by change.
    group = await applyGroup(appliers.stop, [
      upd(kv, ["1"], [1], ["tmp"]),
      upd(kv, ["2"], [1], ["a1"]),
      upd(kv, ["1"], [1], ["b1"]),
    ]);
    expect(group.committed).toBe(false);
    expect(await retries()).toBe(1);
    expect((await state()).slice(0, 2)).toEqual([
      { id: 1, code: "b1" },
      { id: 2, code: "a1" },
    ]);
    expect(await committed()).toEqual(group.written);

    // Drift in a batch, in a single statement and in an insert: the standby refuses it before the COMMIT,
    // and the retry names the change; nothing of the group commits and the position stays.
    const before = await state();
    for (const changes of [
      [upd(kv, ["3"], [1], ["c1"]), upd(kv, ["99"], [1], ["x"])],
      [ins(kv, ["7", "g"]), ins(kv, ["8", "h"]), upd(kv, ["98"], [1], ["y"])],
      [upd(kv, ["3"], [1], ["c1"]), ins(kv, ["5", "dup"])],
    ]) {
      const drift = await failure(applyGroup(appliers.stop, changes));
      expect(drift).toBeInstanceOf(DriftError);
      expect(drift).toMatchObject({
        reason: changes.length === 2 && changes[1]?.kind === "insert" ? "row-exists" : "row-missing",
        changeIndex: changes.length - 1,
      });
      expect(await state()).toEqual(before);
      expect(await committed()).toEqual(group.written);
    }
    // Two inserts into one table go as a COPY, which needs an exchange of its own: that group was not tried in one.
    expect(await retries()).toBe(3);

    // With on-drift=log the retry logs the drift and the rest of the group commits.
    group = await applyGroup(appliers.log, [upd(kv, ["3"], [1], ["c2"]), del(kv, ["97"])]);
    expect(group.committed).toBe(false);
    expect(drifts).toMatchObject([{ reason: "row-missing", changeIndex: 1 }]);
    expect((await state())[2]).toEqual({ id: 3, code: "c2" });
    expect(await committed()).toEqual(group.written);

    // The connection is usable, and the next group goes in one round trip again.
    queries = [];
    group = await applyGroup(appliers.stop, [upd(kv, ["3"], [1], ["c3"])]);
    expect(group.committed).toBe(true);
    expect(queries).toHaveLength(1);
    expect((await state())[2]).toEqual({ id: 3, code: "c3" });
    expect(await committed()).toEqual(group.written);
  });
});
