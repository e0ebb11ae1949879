// A node's report carries its database address (no secret) and its latest rejoin, bounded in size; a
// rejoining old primary reaches the new primary's database at that address with its peer credentials.
import { describe, expect, it } from "vitest";
import { decodeRecord, encodeRecord, type NodeReport } from "../../../operations/cluster/cluster-state.js";
import { databaseAddress, peerDatabaseUrl } from "../../../operations/node/peer-database.js";
import { summarizeRejoin } from "../../../operations/node/rejoin-summary.js";
import type { RejoinReport } from "../../../operations/rejoin/index.js";

const base: NodeReport = {
  node: "a",
  epoch: 1,
  role: "standby",
  ready: true,
  fencedEndOffset: null,
  fencedAt: null,
  writableAt: null,
  sourceId: null,
  lagMs: 0,
  lastError: null,
  at: "2026-12-01T00:00:00Z",
};

function rejoinReport(transactions: number, changesEach: number): RejoinReport {
  return {
    standbyName: "a",
    oldTopic: "diffrelay.app",
    newTopic: "diffrelay.app.e1",
    epoch: 1,
    newPrimaryHoldsLsn: "0/10",
    unpublished: Array.from({ length: transactions }, (_, t) => ({
      commitLsn: `0/${(100 + t).toString(16)}`,
      commitTime: "2026-12-01T00:00:00.000Z",
      xid: 1000 + t,
      reachedOldTopic: false,
      changes: Array.from({ length: changesEach }, (_, c) => ({
        op: "insert" as const,
        table: "public.acks",
        key: { id: String(t * changesEach + c) },
      })),
      truncated: [],
      ddl: [],
    })),
    method: "rewind",
    reseedReasons: [],
    rowsRewound: transactions * changesEach,
    tablesReseeded: [],
    droppedSlot: "diffrelay_app",
    reportId: "7",
  };
}

describe("node reports and rejoin summaries", () => {
  it("a report of an older node (no address, no rejoin) still decodes", () => {
    const { key, value } = encodeRecord({ type: "report", report: base });
    expect(decodeRecord(key, value)).toEqual({ type: "report", report: base });
  });

  it("a summary lists every transaction's changes up to the bound, counts the rest, and round-trips", () => {
    const summary = summarizeRejoin(rejoinReport(5, 3), 7, "2026-12-01T00:00:01Z");
    expect(summary.unpublishedTotal).toBe(5);
    expect(summary.unpublished.map((t) => t.changes.length)).toEqual([3, 3, 1, 0, 0]);
    expect(summary.unpublished.map((t) => t.changesLeftOut)).toEqual([0, 0, 2, 3, 3]);
    expect(summary.transactionsLeftOut).toBe(0);
    const few = summarizeRejoin(rejoinReport(20, 1), 4, "2026-12-01T00:00:01Z");
    expect(few.unpublished).toHaveLength(4);
    expect(few.transactionsLeftOut).toBe(16);
    const report = { ...base, databaseUrl: "postgres://b:5432/app", rejoin: summary };
    const { key, value } = encodeRecord({ type: "report", report });
    expect(decodeRecord(key, value)).toEqual({ type: "report", report });
  });

  it("the reported address is host, port and database; a peer connects with its own or the configured credentials, and its own parameters", () => {
    const address = databaseAddress("postgres://app:s3cret@db-b:5432/app?sslmode=require");
    expect(address).toBe("postgres://db-b:5432/app");
    expect(
      peerDatabaseUrl(address, "postgres://app:mine@db-a:5432/app?sslmode=require", {
        user: undefined,
        password: undefined,
      }),
    ).toBe("postgres://app:mine@db-b:5432/app?sslmode=require");
    const url = new URL(
      peerDatabaseUrl(address, "postgres://app:mine@db-a:5432/app", { user: "rejoiner", password: "p@ss/w" }),
    );
    expect([url.username, decodeURIComponent(url.password), url.host]).toEqual([
      "rejoiner",
      "p@ss/w",
      "db-b:5432",
    ]);
  });
});
