// The grouper joins values split into VALUE_PART frames across messages, and skips a stale capture
// session's late messages. Frames are built the real way: the capture's DataMessageBuilder, then the
// applier's readFrame and checkSource, as they would cross the topic.
import { describe, expect, test } from "vitest";
import { createApplyMetrics } from "../../../connectors/postgres-standby/apply-metrics.js";
import { checkSource, type Frame, readFrame } from "../../../connectors/postgres-standby/frame-decoder.js";
import { TransactionGrouper } from "../../../connectors/postgres-standby/transaction-grouper.js";
import type { Change, TransactionHeader } from "../../../src/change/change-model.js";
import { type CaptureSessionId, DataMessageBuilder } from "../../../src/wire/data-message.js";
import { FakeStandby, position, SOURCE_ID, TOPIC, withTextValues } from "./apply-fakes.js";

const relation = { relationId: 16384, version: 7 };
const header = (commitLsn: bigint, chunk = 0, finalChunk = true): TransactionHeader => ({
  commitLsn,
  commitTimeMicros: 1_700_000_000_000_000n,
  xid: 900,
  chunk,
  finalChunk,
});
const insert = (id: string, text: string | null): Change => ({
  kind: "insert",
  relation,
  values: [id, text],
});

function grouper() {
  const standby = new FakeStandby();
  const applied: Change[] = [];
  const stale: string[] = [];
  const metrics = createApplyMetrics("unit");
  const g = new TransactionGrouper({
    transaction: standby,
    position: position(),
    maxRowsPerTransaction: 1000,
    maxGroupMs: 1000,
    maxPendingChanges: 100,
    apply: async (changes) => {
      applied.push(...changes.map(withTextValues));
      await standby.apply(changes);
    },
    applyAlone: standby.applyAlone,
    metrics,
    pauseGate: { mustPauseBefore: () => false, hold: async () => undefined },
    onStaleMessage: (offset, problem) => stale.push(`${offset}: ${problem}`),
    expectSource: () => undefined,
  });
  let offset = 0;
  const feed = async (messages: Buffer[]) => {
    for (const value of messages) {
      const origin = { topic: TOPIC, partition: 0, sourceId: SOURCE_ID };
      const frame: Frame = checkSource(readFrame(value, BigInt(offset++), origin), value, origin);
      await g.handleFrame(frame, true);
    }
  };
  return { g, standby, applied, stale, metrics, feed };
}

/** A session's builder, with the capture's own calls, and the messages it sealed. */
function session(id: CaptureSessionId) {
  const builder = new DataMessageBuilder({ sourceId: SOURCE_ID, epoch: 0 }, id);
  return { builder, seal: () => builder.finish() };
}

const A: CaptureSessionId = { captureId: 0x0100n, session: 1 };
const B: CaptureSessionId = { captureId: 0x0100n, session: 2 };

describe("values split across messages", () => {
  test("a value in pieces over three messages is joined into its change, and so are the key values of an update", async () => {
    const text = "é✓".repeat(1000) + "x".repeat(5000);
    const bytes = Buffer.from(text, "utf8");
    const s = session(A);
    s.builder.beginTransaction(header(100n, 0, false));
    s.builder.addValuePart(bytes.subarray(0, 1001), false); // mid-character: the pieces are bytes
    const first = s.seal();
    s.builder.beginTransaction(header(100n, 1, false));
    s.builder.addValuePart(bytes.subarray(1001, 4000), false);
    const second = s.seal();
    s.builder.beginTransaction(header(100n, 2));
    s.builder.addValuePart(bytes.subarray(4000), true);
    s.builder.addChange(insert("1", text), new Set([1]));
    s.builder.addValuePart(Buffer.from("old key"), true);
    s.builder.addChange(
      { kind: "update", relation, key: ["old key"], changedColumns: [1], values: ["new"] },
      new Set([0]),
    );
    const third = s.seal();
    expect(third.length).toBeLessThan(bytes.length);

    const { applied, standby, feed } = grouper();
    await feed([first, second, third]);
    expect(applied).toEqual([
      insert("1", text),
      { kind: "update", relation, key: ["old key"], changedColumns: [1], values: ["new"] },
    ]);
    expect(standby.lastCommitted?.lastCommitLsn).toBe(100n);
  });

  test("a transaction started over by the capture drops the pieces of its first attempt", async () => {
    const s = session(A);
    s.builder.beginTransaction(header(100n, 0, false));
    s.builder.addValuePart(Buffer.from("left over from the first attempt"), false);
    const attempt = s.seal();
    const t = session(B);
    t.builder.beginTransaction(header(100n));
    t.builder.addValuePart(Buffer.from("whole"), true);
    t.builder.addChange(insert("1", "whole"), new Set([1]));
    const { applied, feed } = grouper();
    await feed([attempt, t.seal()]);
    expect(applied).toEqual([insert("1", "whole")]);
  });

  test("a joined value whose pieces never completed, or pieces no change used, stop the applier", async () => {
    const s = session(A);
    s.builder.beginTransaction(header(100n));
    s.builder.addValuePart(Buffer.from("half"), false);
    s.builder.addChange(insert("1", "x"), new Set([1]));
    await expect(grouper().feed([s.seal()])).rejects.toThrow(/whose last VALUE_PART did not come/);
    s.builder.beginTransaction(header(200n));
    s.builder.addValuePart(Buffer.from("unused"), true);
    s.builder.addChange(insert("2", "x"));
    await expect(grouper().feed([s.seal()])).rejects.toThrow(/VALUE_PART frames that no change used/);
  });
});

describe("capture sessions never interleave", () => {
  test("a stale session's chunk after the newer session restarted the transaction is not merged into it", async () => {
    const a = session(A);
    a.builder.beginTransaction(header(100n, 0, false));
    a.builder.addChange(insert("1", "from A"));
    const a0 = a.seal();
    a.builder.beginTransaction(header(100n, 1, false));
    a.builder.addChange(insert("2", "from A"));
    const a1 = a.seal();
    // A's last request was still in flight when its session ended: it lands after B's first chunks.
    a.builder.beginTransaction(header(100n, 2));
    a.builder.addChange(insert("3", "from A"));
    const a2Late = a.seal();

    const b = session(B);
    b.builder.beginTransaction(header(100n, 0, false));
    b.builder.addChange(insert("1", "from B"));
    const b0 = b.seal();
    b.builder.beginTransaction(header(100n, 1, false));
    b.builder.addChange(insert("2", "from B"));
    const b1 = b.seal();
    b.builder.beginTransaction(header(100n, 2));
    b.builder.addChange(insert("3", "from B"));
    const b2 = b.seal();

    const { applied, stale, metrics, standby, feed } = grouper();
    await feed([a0, a1, b0, b1, a2Late, b2]);
    // A's first two chunks were rolled back when B started over; A's late chunk 2 is skipped, not merged.
    expect(standby.committedRows).toEqual(["1", "2", "3"]);
    expect(applied.slice(-3)).toEqual([insert("1", "from B"), insert("2", "from B"), insert("3", "from B")]);
    expect(stale).toEqual([
      expect.stringMatching(/^4: skipped: it comes from capture 0000000000000100 session 1/),
    ]);
    expect((await metrics.staleSessionSkipped.get()).values[0]?.value).toBe(1);
    expect(standby.lastCommitted).toMatchObject({ lastCommitLsn: 100n, nextOffset: 6n });
  });

  test("a stale session's transaction arriving after the newer session's frames is never applied", async () => {
    const a = session(A);
    a.builder.beginTransaction(header(300n, 0, false));
    a.builder.addChange(insert("30", "stale"));
    const staleChunk = a.seal();
    const b = session(B);
    b.builder.beginTransaction(header(200n));
    b.builder.addChange(insert("20", "new"));
    const b200 = b.seal();
    b.builder.beginTransaction(header(300n));
    b.builder.addChange(insert("30", "new"));
    const b300 = b.seal();
    const { applied, stale, feed, standby } = grouper();
    // Without the session check, A's chunk would open 300 as a chunked transaction; here it is skipped.
    await feed([b200, staleChunk, b300]);
    expect(stale).toHaveLength(1);
    expect(applied).toEqual([insert("20", "new"), insert("30", "new")]);
    expect(standby.lastCommitted?.lastCommitLsn).toBe(300n);
  });

  test("a later capture process (a larger capture id) is newer than every session of an earlier one", async () => {
    const later = session({ captureId: 0x0200n, session: 1 });
    later.builder.beginTransaction(header(100n));
    later.builder.addChange(insert("1", "later"));
    const earlier = session({ captureId: 0x0100n, session: 9 });
    earlier.builder.beginTransaction(header(200n));
    earlier.builder.addChange(insert("2", "earlier"));
    const { applied, stale, feed } = grouper();
    await feed([later.seal(), earlier.seal()]);
    expect(applied).toEqual([insert("1", "later")]);
    expect(stale).toHaveLength(1);
  });
});
