import { describe, expect, test } from "vitest";
import { AbandonedGroupError } from "../../../connectors/postgres-standby/abandoned-group-error.js";
import { createApplyMetrics } from "../../../connectors/postgres-standby/apply-metrics.js";
import { BadFrameError } from "../../../connectors/postgres-standby/bad-frame-error.js";
import { PauseGate } from "../../../connectors/postgres-standby/pause-gate.js";
import type { ApplyPosition } from "../../../connectors/postgres-standby/position-store.js";
import {
  type ChangeSink,
  TransactionGrouper,
  type TransactionGrouperOptions,
} from "../../../connectors/postgres-standby/transaction-grouper.js";
import type { Lsn } from "../../../src/change/lsn.js";
import {
  badFrame,
  chunk,
  ddlChunk,
  FakePauseRecord,
  FakeStandby,
  frame,
  position,
  SOURCE_ID,
} from "./apply-fakes.js";

const noPause = { mustPauseBefore: () => false, hold: async () => undefined };

function grouperOn(fields: Partial<TransactionGrouperOptions> & { start?: ApplyPosition } = {}) {
  const standby = new FakeStandby();
  const metrics = createApplyMetrics("unit");
  const clock = { now: 0 };
  const grouper = new TransactionGrouper({
    transaction: standby,
    position: fields.start ?? position(),
    maxRowsPerTransaction: 1000,
    maxGroupMs: 1000,
    maxPendingChanges: 100,
    apply: standby.apply,
    applyAlone: standby.applyAlone,
    metrics,
    pauseGate: noPause,
    onStaleMessage: () => undefined,
    expectSource: () => undefined,
    now: () => clock.now,
    ...fields,
  });
  return { grouper, standby, metrics, clock };
}

async function count(metric: { get(): Promise<{ values: { value: number }[] }> }): Promise<number> {
  return (await metric.get()).values[0]?.value ?? 0;
}

describe("transaction grouper", () => {
  test("groups transactions into one standby transaction and commits the position with them", async () => {
    const { grouper, standby, metrics } = grouperOn();
    await grouper.handleFrame(frame(0, chunk(10n, [1]), chunk(20n, [2])), false);
    await grouper.handleFrame(frame(1, chunk(30n, [3])), true);
    expect(standby.log).toEqual(["BEGIN", "apply 1,2,3", "COMMIT next=2 lsn=30"]);
    expect(standby.committedRows).toEqual(["1", "2", "3"]);
    expect(standby.lastCommitted).toMatchObject({ nextOffset: 2n, lastCommitLsn: 30n });
    expect(await count(metrics.transactions)).toBe(3);
    expect(await count(metrics.rows)).toBe(3);
  });

  test("commits the group right after a transaction that adds an enum value, mid-message", async () => {
    const { grouper, standby } = grouperOn();
    await grouper.handleFrame(
      frame(0, chunk(10n, [1]), ddlChunk(20n, "ALTER TYPE mood ADD VALUE 'happy'"), chunk(30n, [3])),
      true,
    );
    expect(standby.log).toEqual([
      "BEGIN",
      "apply 1,ddl",
      "COMMIT next=0 lsn=20",
      "BEGIN",
      "apply 3",
      "COMMIT next=1 lsn=30",
    ]);
  });

  test("runs DDL that refuses a transaction block alone, between the group before it and its position", async () => {
    const { grouper, standby } = grouperOn();
    await grouper.handleFrame(
      frame(0, chunk(10n, [1]), ddlChunk(20n, "DROP INDEX CONCURRENTLY i"), chunk(30n, [3])),
      true,
    );
    expect(standby.log).toEqual([
      "BEGIN",
      "apply 1",
      "COMMIT next=0 lsn=10",
      "alone DROP INDEX CONCURRENTLY i",
      "BEGIN",
      "COMMIT next=0 lsn=20",
      "BEGIN",
      "apply 3",
      "COMMIT next=1 lsn=30",
    ]);
  });

  test("skips transactions at or below the last applied commit LSN", async () => {
    const { grouper, standby, metrics } = grouperOn({
      start: position({ nextOffset: 5n, lastCommitLsn: 20n }),
    });
    await grouper.handleFrame(frame(5, chunk(10n, [1]), chunk(20n, [2]), chunk(30n, [3])), true);
    expect(standby.committedRows).toEqual(["3"]);
    expect(standby.lastCommitted).toMatchObject({ nextOffset: 6n, lastCommitLsn: 30n });
    expect(await count(metrics.duplicatesSkipped)).toBe(2);
  });

  test("a message of duplicates only moves the offset, without a standby transaction", async () => {
    const { grouper, standby } = grouperOn({ start: position({ lastCommitLsn: 20n }) });
    await grouper.handleFrame(frame(0, chunk(20n, [1])), true);
    expect(standby.log).toEqual([]);
    expect(grouper.current.nextOffset).toBe(1n);
  });

  test("hands the changes still pending at commit to applyAndCommit with the group's position; its false still commits", async () => {
    let committing = true;
    const handed: string[] = [];
    const { grouper, standby } = grouperOn({
      maxPendingChanges: 3,
      applyAndCommit: async (changes, _positions, at) => {
        handed.push(`${changes.length} changes, next=${at.nextOffset} lsn=${at.lastCommitLsn}`);
        await standby.apply(changes);
        if (!committing) return false;
        await standby.commit(at);
        return true;
      },
    });
    await grouper.handleFrame(frame(0, chunk(10n, [1]), chunk(20n, [2])), true);
    expect(handed).toEqual(["2 changes, next=1 lsn=20"]);
    expect(standby.log).toEqual(["BEGIN", "apply 1,2", "COMMIT next=1 lsn=20"]);

    // Past maxPendingChanges, the first changes go to apply on their own; the rest commit with the position.
    await grouper.handleFrame(frame(1, chunk(30n, [3, 4, 5]), chunk(35n, [6])), true);
    expect(handed).toEqual(["2 changes, next=1 lsn=20", "1 changes, next=2 lsn=35"]);
    expect(standby.log.slice(3)).toEqual(["BEGIN", "apply 3,4,5", "apply 6", "COMMIT next=2 lsn=35"]);

    committing = false;
    await grouper.handleFrame(frame(2, chunk(40n, [7])), true);
    expect(standby.log.slice(7)).toEqual(["BEGIN", "apply 7", "COMMIT next=3 lsn=40"]);
    expect(standby.committedRows).toEqual(["1", "2", "3", "4", "5", "6", "7"]);
  });

  test("a chunked transaction commits whole, under a savepoint, with the offset after its last chunk", async () => {
    const { grouper, standby } = grouperOn();
    await grouper.handleFrame(frame(0, chunk(50n, [1, 2], { finalChunk: false })), true);
    expect(grouper.current.nextOffset).toBe(0n);
    expect(standby.committedPositions).toEqual([]);
    await grouper.handleFrame(frame(1, chunk(50n, [3], { chunk: 1 })), true);
    expect(standby.log).toEqual([
      "BEGIN",
      "SAVEPOINT",
      "apply 1,2,3",
      "RELEASE SAVEPOINT",
      "COMMIT next=2 lsn=50",
    ]);
    expect(standby.committedRows).toEqual(["1", "2", "3"]);
  });

  test("chunk 0 arriving again (a capture restart) starts the transaction over", async () => {
    const { grouper, standby } = grouperOn({ maxPendingChanges: 1 });
    await grouper.handleFrame(frame(0, chunk(50n, [1, 2], { finalChunk: false })), true);
    await grouper.handleFrame(frame(1, chunk(50n, [1, 2], { finalChunk: false })), true);
    await grouper.handleFrame(frame(2, chunk(50n, [3], { chunk: 1 })), true);
    expect(standby.log).toContain("ROLLBACK TO SAVEPOINT");
    expect(standby.committedRows).toEqual(["1", "2", "3"]);
    expect(standby.lastCommitted).toMatchObject({ nextOffset: 3n, lastCommitLsn: 50n });
  });

  test("a chunk appended twice by a retried produce is skipped as a duplicate, not out of sequence", async () => {
    const { grouper, standby, metrics } = grouperOn();
    await grouper.handleFrame(frame(0, chunk(50n, [1], { finalChunk: false })), true);
    await grouper.handleFrame(frame(1, chunk(50n, [2], { chunk: 1, finalChunk: false })), true);
    await grouper.handleFrame(frame(2, chunk(50n, [2], { chunk: 1, finalChunk: false })), true);
    await grouper.handleFrame(frame(3, chunk(50n, [3], { chunk: 2 })), true);
    expect(standby.committedRows).toEqual(["1", "2", "3"]);
    expect(standby.lastCommitted).toMatchObject({ nextOffset: 4n, lastCommitLsn: 50n });
    expect(await count(metrics.duplicatesSkipped)).toBe(1);
  });

  test("a message appended twice that ends one transaction and starts the next is applied once", async () => {
    const { grouper, standby } = grouperOn();
    await grouper.handleFrame(frame(0, chunk(50n, [1], { finalChunk: false })), true);
    // The same message twice: the last chunk of 50, then the first chunk of 60.
    const twice = () => frame(1, chunk(50n, [2], { chunk: 1 }), chunk(60n, [3], { finalChunk: false }));
    await grouper.handleFrame(twice(), true);
    await grouper.handleFrame({ ...twice(), offset: 2n }, true);
    await grouper.handleFrame(frame(3, chunk(60n, [4], { chunk: 1 })), true);
    expect(standby.committedRows).toEqual(["1", "2", "3", "4"]);
    expect(standby.lastCommitted).toMatchObject({ nextOffset: 4n, lastCommitLsn: 60n });
  });

  test("a chunk out of sequence is a bad frame", async () => {
    const open = grouperOn();
    await open.grouper.handleFrame(frame(0, chunk(50n, [1], { finalChunk: false })), true);
    await expect(open.grouper.handleFrame(frame(1, chunk(50n, [2], { chunk: 2 })), true)).rejects.toThrow(
      /chunk 2 of transaction 0\/32 arrived where chunk 1 of 0\/32 was expected/,
    );
    const fresh = grouperOn();
    await expect(fresh.grouper.handleFrame(frame(0, chunk(60n, [1], { chunk: 1 })), true)).rejects.toThrow(
      BadFrameError,
    );
  });

  test("a bad frame stops the applier without a dead-letter topic", async () => {
    const { grouper } = grouperOn();
    await expect(grouper.handleFrame(badFrame(0), true)).rejects.toThrow(BadFrameError);
  });

  test("with a dead-letter topic, a bad frame between transactions is sent there and stepped over", async () => {
    const sent: bigint[] = [];
    const { grouper, standby, metrics } = grouperOn({
      deadLetter: async (_value, offset) => {
        sent.push(offset);
      },
    });
    await grouper.handleFrame(frame(0, chunk(10n, [1])), false);
    await grouper.handleFrame(badFrame(1), true);
    expect(sent).toEqual([1n]);
    expect(standby.lastCommitted).toMatchObject({ nextOffset: 2n, lastCommitLsn: 10n });
    expect(await count(metrics.deadLettered)).toBe(1);
  });

  test("a bad frame inside a chunked transaction is never stepped over", async () => {
    const sent: bigint[] = [];
    const { grouper } = grouperOn({
      deadLetter: async (_value, offset) => {
        sent.push(offset);
      },
    });
    await grouper.handleFrame(frame(0, chunk(50n, [1], { finalChunk: false })), true);
    await expect(grouper.handleFrame(badFrame(1), true)).rejects.toThrow(BadFrameError);
    expect(sent).toEqual([]);
  });

  test("a group ends when it holds enough rows", async () => {
    const { grouper, standby } = grouperOn({ maxRowsPerTransaction: 3 });
    await grouper.handleFrame(frame(0, chunk(10n, [1, 2])), false);
    expect(standby.committedPositions).toEqual([]);
    await grouper.handleFrame(frame(1, chunk(20n, [3, 4])), false);
    await grouper.handleFrame(frame(2, chunk(30n, [5])), false);
    expect(standby.committedPositions.map((p) => p.nextOffset)).toEqual([2n]);
  });

  test("a group ends when it has been open long enough", async () => {
    const { grouper, standby, clock } = grouperOn({ maxGroupMs: 100 });
    await grouper.handleFrame(frame(0, chunk(10n, [1])), false);
    clock.now += 99;
    await grouper.handleFrame(frame(1, chunk(20n, [2])), false);
    expect(standby.committedPositions).toEqual([]);
    clock.now += 1;
    await grouper.handleFrame(frame(2, chunk(30n, [3])), false);
    expect(standby.committedPositions.map((p) => p.nextOffset)).toEqual([3n]);
  });

  test("verify's pause: the group before the pause point commits, the gate holds, then the next transaction runs", async () => {
    const standby = new FakeStandby();
    const record = new FakePauseRecord([100n, null], standby.log);
    const gate = new PauseGate({
      record,
      wait: async () => undefined,
      heartbeat: async () => undefined,
      stopping: () => false,
      logger: { info: () => undefined, warn: () => undefined },
    });
    const { grouper } = grouperOn({ transaction: standby, apply: standby.apply, pauseGate: gate });
    gate.requestSeen(100n);
    await grouper.handleFrame(frame(0, chunk(90n, [1])), false);
    await grouper.handleFrame(frame(1, chunk(100n, [2])), true);
    expect(standby.log).toEqual([
      "BEGIN",
      "apply 1",
      "COMMIT next=1 lsn=90",
      "paused at 90",
      "BEGIN",
      "apply 2",
      "COMMIT next=2 lsn=100",
    ]);
    expect(gate.state).toEqual({ kind: "running" });
  });

  test("duplicates never meet the pause: only a transaction to apply waits", async () => {
    const holds: Lsn[] = [];
    const { grouper } = grouperOn({
      start: position({ lastCommitLsn: 100n }),
      pauseGate: {
        mustPauseBefore: (lsn) => lsn >= 50n,
        hold: async (_at, waiting) => {
          holds.push(waiting);
        },
      },
    });
    await grouper.handleFrame(frame(0, chunk(60n, [1]), chunk(110n, [2])), true);
    expect(holds).toEqual([110n]);
  });

  test("a position without a source takes the first message's, and commits it", async () => {
    const adopted: bigint[] = [];
    const { grouper, standby } = grouperOn({
      start: position({ sourceId: null, epoch: 0 }),
      expectSource: (id) => adopted.push(id),
    });
    await grouper.handleFrame(frame(0, chunk(10n, [1])), true);
    expect(adopted).toEqual([SOURCE_ID]);
    expect(standby.lastCommitted?.sourceId).toBe(SOURCE_ID);
  });

  test("draining commits complete transactions and drops one whose last chunk never came", async () => {
    const { grouper, standby } = grouperOn();
    await grouper.handleFrame(frame(0, chunk(10n, [1])), false);
    await grouper.handleFrame(frame(1, chunk(20n, [2], { finalChunk: false })), false);
    await grouper.commitCompleted();
    expect(standby.committedRows).toEqual(["1"]);
    expect(standby.lastCommitted).toMatchObject({ nextOffset: 1n, lastCommitLsn: 10n });
  });

  test("abandon rolls back what is not committed", async () => {
    const { grouper, standby } = grouperOn();
    await grouper.handleFrame(frame(0, chunk(10n, [1])), false);
    await grouper.abandon();
    expect(standby.log.at(-1)).toBe("ROLLBACK");
    expect(standby.committedRows).toEqual([]);
  });

  test("abandon waits for the frame under way, whose next statement it refuses, then rolls back", async () => {
    let release: () => void = () => undefined;
    const held = new Promise<void>((resolve) => {
      release = resolve;
    });
    let entered: () => void = () => undefined;
    const applyStarted = new Promise<void>((resolve) => {
      entered = resolve;
    });
    let sink: ChangeSink = async () => undefined;
    const { grouper, standby } = grouperOn({ apply: (changes, positions) => sink(changes, positions) });
    sink = async (changes) => {
      entered();
      await held;
      await standby.apply(changes);
    };
    const applying = grouper.handleFrame(frame(0, chunk(10n, [1])), true);
    await applyStarted;
    const abandoning = grouper.abandon();
    await new Promise((resolve) => setImmediate(resolve));
    expect(standby.log).toEqual(["BEGIN"]);
    release();
    await abandoning;
    await expect(applying).rejects.toThrow(/^COMMIT refused/);
    expect(standby.log).toEqual(["BEGIN", "apply 1", "ROLLBACK"]);
    expect(standby.committedRows).toEqual([]);
  });

  test("once abandoned, the grouper refuses to send anything, naming what and where", async () => {
    const { grouper, standby } = grouperOn();
    await grouper.handleFrame(frame(0, chunk(10n, [1])), true);
    await grouper.abandon();
    await expect(grouper.handleFrame(frame(1, chunk(20n, [2])), true)).rejects.toThrow(
      /applying a message refused on the standby of topic diffrelay\.app\.data partition 0: .*offset 1/,
    );
    await expect(grouper.commitCompleted()).rejects.toBeInstanceOf(AbandonedGroupError);
    expect(standby.log).toEqual(["BEGIN", "apply 1", "COMMIT next=1 lsn=10"]);
  });
});
