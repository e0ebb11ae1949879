// Acceptance: an UPDATE of one column of a wide row travels as the key plus that one column, nothing more.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseLsn } from "../../src/change/lsn.js";
import { type CaptureFixture, startCaptureFixture } from "../support/capture-process.js";
import { runSql, withClient } from "../support/services.js";
import { transactionsOf } from "../support/topic-reader.js";

let fixture: CaptureFixture;

beforeAll(async () => {
  fixture = await startCaptureFixture(
    "cap_diff",
    `CREATE TABLE wide (
       id bigint PRIMARY KEY, c1 text, c2 text, c3 integer, c4 numeric, c5 timestamptz,
       c6 jsonb, c7 boolean, c8 text, c9 double precision);
     INSERT INTO wide
       SELECT g, repeat('a', 100), repeat('b', 100), g, g * 1.5, '2024-01-01'::timestamptz + g * interval '1 s',
              jsonb_build_object('k', g, 'pad', repeat('x', 200)), g % 2 = 0, md5(g::text), g / 3.0
       FROM generate_series(1, 10) g`,
  );
});

afterAll(async () => {
  await fixture?.stop();
});

describe("diffrelay capture: update diffs", () => {
  it("sends the key and exactly the one changed column of a 10-column row", async () => {
    const lsnBefore = await withClient(fixture.db.url, async (c) => {
      await c.query("BEGIN");
      await c.query("UPDATE wide SET c8 = 'changed' WHERE id = 7");
      const { rows } = await c.query<{ lsn: string }>("SELECT pg_current_wal_insert_lsn()::text AS lsn");
      await c.query("COMMIT");
      return parseLsn(rows[0]?.lsn as string);
    });
    const reader = fixture.follower;
    await reader.waitForCommitLsn(lsnBefore);
    await reader.waitForEnd();
    const records = reader.dataRecords();
    const { transactions, abandoned, incomplete } = transactionsOf(records);
    expect([abandoned, incomplete]).toEqual([[], undefined]);
    // The rows inserted before the capture started are not in the slot's stream: only the update is.
    expect(transactions).toHaveLength(1);
    const tx = transactions[0];
    expect(tx?.commitLsn).toBeGreaterThanOrEqual(lsnBefore);
    expect(tx?.chunks.map((c) => [c.header.chunk, c.header.finalChunk])).toEqual([[0, true]]);
    expect(tx?.changes).toHaveLength(1);
    const change = tx?.changes[0];
    expect(change).toMatchObject({ kind: "update", key: ["7"], changedColumns: [8], values: ["changed"] });

    // The transaction is alone in its message, so the message size is the transaction's encoded size.
    expect(tx?.offsets).toHaveLength(1);
    const message = records.find((r) => r.offset === tx?.offsets[0]);
    expect(message?.message.chunks).toHaveLength(1);
    const rowText = await runSql<{ bytes: number }>(
      fixture.db.url,
      "SELECT octet_length(wide::text)::int AS bytes FROM wide WHERE id = 7",
    );
    console.log(
      `one-column update of a 10-column row: ${message?.bytes} bytes encoded (whole message, envelope ` +
        `included); the row's text form is ${rowText.rows[0]?.bytes} bytes`,
    );
    expect(message?.bytes).toBeLessThan(100);
  });
});
