// The standby transaction's commit on a real standby: the position and the COMMIT leave in one
// round trip, and a position that cannot be written commits nothing of what it covers.
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ApplyPosition, readPosition } from "../../connectors/postgres-standby/position-store.js";
import { PgStandbyTransaction } from "../../connectors/postgres-standby/standby-transaction.js";
import { loadMigrations, runMigrations } from "../../src/migrations/migration-runner.js";
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
