import { describe, expect, it } from "vitest";
import { decodeRecord, encodeRecord, type NodeReport } from "../../../operations/cluster/cluster-state.js";
import {
  fencedForHandOver,
  lossReport,
  oldCaptureKnown,
} from "../../../operations/failover/failover-loss.js";
import type { CaptureLastKnown } from "../../../operations/promote/capture-last-known.js";

const silent: CaptureLastKnown = {
  slotLagBytes: null,
  zeroLoss: "unknown",
  syncState: null,
  confirmedLsn: null,
};

function primaryReport(capture: NodeReport["capture"], epoch = 4): NodeReport {
  return {
    node: "a",
    epoch,
    role: "primary",
    ready: true,
    fencedEndOffset: null,
    fencedAt: null,
    writableAt: "2026-12-06T01:00:00.000Z",
    sourceId: "1f",
    lagMs: null,
    lastError: null,
    databaseUrl: "postgres://db-a:5432/app",
    rejoin: null,
    ...(capture === undefined ? {} : { capture }),
    at: "2026-12-06T01:02:03.000Z",
  };
}

const zeroLossOn = {
  zeroLoss: "required",
  syncState: "sync",
  slotLagBytes: 0,
  confirmedLsn: "0/3000060",
} as const;

describe("what a failover knows of a dead primary's capture", () => {
  it("a primary's report carries its capture's zero-loss mode and sync state, and an older report without it still decodes", () => {
    const { key, value } = encodeRecord({ type: "report", report: primaryReport(zeroLossOn) });
    expect(decodeRecord(key, value)).toEqual({ type: "report", report: primaryReport(zeroLossOn) });
    const older = encodeRecord({ type: "report", report: primaryReport(undefined) });
    expect(decodeRecord(older.key, older.value)).toEqual({
      type: "report",
      report: primaryReport(undefined),
    });
  });

  it("its node's silence: the last report of that epoch says zero-loss mode was on, so nothing acknowledged is lost (exit 0)", () => {
    const known = oldCaptureKnown(silent, primaryReport(zeroLossOn), 4);
    expect(known).toEqual({
      ...zeroLossOn,
      from: "a's report on the cluster topic at 2026-12-06T01:02:03.000Z",
    });
    expect(lossReport(known)).toMatchObject({ acknowledgedCommits: "none", slotLagBytes: 0 });
    expect(lossReport(known).why).toMatch(/^zero-loss mode was on \(a's report .*sync_state sync\)/);
  });

  it("a live /status wins over the report; a report of another epoch or role, or none, leaves the mode unknown and says why", () => {
    const live: CaptureLastKnown = {
      slotLagBytes: 800,
      zeroLoss: "off",
      syncState: "async",
      confirmedLsn: "0/1",
    };
    expect(oldCaptureKnown(live, primaryReport(zeroLossOn), 4)).toEqual({ ...live, from: "its /status" });
    for (const [report, why] of [
      [
        primaryReport(zeroLossOn, 3),
        /last report on the cluster topic \(primary of epoch 3, .*\) says nothing of a capture of epoch 4/,
      ],
      [{ ...primaryReport(zeroLossOn), role: "fenced" as const, capture: null }, /\(fenced of epoch 4/],
      [primaryReport(undefined), /\(primary of epoch 4, at .*\) says nothing/],
      [undefined, /the cluster topic holds no report of it/],
    ] as const) {
      const known = oldCaptureKnown(silent, report, 4);
      expect(known.zeroLoss).toBe("unknown");
      const loss = lossReport(known);
      expect(loss.acknowledgedCommits).toBe("possible");
      expect(loss.why).toMatch(
        /^zero-loss mode was not known \(the old capture's \/status did not answer, and /,
      );
      expect(loss.why).toMatch(why);
    }
  });

  it("a report saying the mode was off or optional: loss is possible, with the lag it reported", () => {
    const off = { zeroLoss: "off", syncState: null, slotLagBytes: 4096, confirmedLsn: "0/2" } as const;
    const loss = lossReport(oldCaptureKnown(silent, primaryReport(off), 4));
    expect(loss).toMatchObject({ acknowledgedCommits: "possible", slotLagBytes: 4096 });
    expect(loss.why).toMatch(/^zero-loss mode was off \(a's report on the cluster topic at /);
    const optional = { ...zeroLossOn, zeroLoss: "optional" } as const;
    expect(lossReport(oldCaptureKnown(silent, primaryReport(optional), 4)).acknowledgedCommits).toBe(
      "possible",
    );
  });
});

describe("a failover out of a switchover whose old primary fenced", () => {
  const switching: NodeReport = {
    ...primaryReport(undefined, 5),
    role: "switching",
    ready: false,
    fencedEndOffset: "120",
    fencedAt: "2026-12-06T01:02:00.000Z",
    writableAt: null,
  };

  it("loses nothing acknowledged when it drains to at least the fence's end, whatever the zero-loss mode", () => {
    const loss = fencedForHandOver(switching, 4, 120n);
    expect(loss?.acknowledgedCommits).toBe("none");
    expect(loss?.why).toContain("offset 120");
  });

  it("says nothing when the drained end is below the fence's end, the report is of the old epoch, or there is no fence", () => {
    expect(fencedForHandOver(switching, 4, 119n)).toBeNull();
    expect(fencedForHandOver({ ...switching, epoch: 4 }, 4, 120n)).toBeNull();
    expect(fencedForHandOver({ ...switching, fencedEndOffset: null }, 4, 120n)).toBeNull();
    expect(fencedForHandOver(undefined, 4, 120n)).toBeNull();
  });
});
