import { describe, expect, it } from "vitest";
import {
  checkHistory,
  type FinalNode,
  type FinalState,
  formatReport,
  type HistoryFault,
  type HistoryWrite,
  median,
} from "../../support/history-check.js";

const T = 1_700_000_000_000;
const w = (id: number, node: string, atS: number): HistoryWrite => ({ id, node, at: T + atS * 1000 });
const fault = (kind: string, atS: number, oldPrimary: string, newPrimary: string): HistoryFault => ({
  kind,
  at: T + atS * 1000,
  oldPrimary,
  newPrimary,
});
const node = (name: string, primary: boolean, differences: string[] = []): FinalNode => ({
  name,
  primaryAnswer: primary ? 200 : 503,
  acceptsWrite: primary,
  differences,
});
const end = (over: Partial<FinalState> = {}): FinalState => ({
  zeroLoss: true,
  primary: "b",
  idsOnPrimary: new Set([1, 2, 3, 4, 5, 6]),
  reportedIds: new Set(),
  nodes: [node("a", false), node("b", true), node("c", false)],
  ...over,
});

// a primary until the kill at 10 s; b acknowledges from 16 s on.
const writes = [w(1, "a", 1), w(2, "a", 5), w(3, "a", 10.2), w(4, "b", 16), w(5, "b", 17), w(6, "b", 18)];
const faults = [fault("kill -9 of the primary's whole server", 10, "a", "b")];

describe("checkHistory", () => {
  it("passes a clean run and measures the fault to the new primary's first write", () => {
    const v = checkHistory(writes, faults, end());
    expect(v.problems).toEqual([]);
    expect(v.kinds).toEqual([
      {
        kind: "kill -9 of the primary's whole server",
        injections: 1,
        acknowledged: 4,
        missing: 0,
        unreported: 0,
        splitBrain: 0,
        recoveryMs: [6000],
        medianMs: 6000,
        maxMs: 6000,
      },
    ]);
    expect(v).toMatchObject({ nodesEqual: 3, nodes: 3, acknowledged: 6, missing: 0, splitBrain: 0 });
  });

  it("(a) zero-loss: an acknowledged write missing on the final primary is a problem, rejoin report or not", () => {
    const v = checkHistory(
      writes,
      faults,
      end({ idsOnPrimary: new Set([1, 2, 4, 5, 6]), reportedIds: new Set([3]) }),
    );
    expect(v.problems).toEqual([
      expect.stringMatching(
        /^zero-loss mode: 1 acknowledged writes are not on the final primary b: 3 \(a at /,
      ),
    ]);
    expect(v.kinds[0]).toMatchObject({ missing: 1, unreported: 0 });
  });

  it("(a) async: a missing write a rejoin report lists is accounted for; one it does not list is a problem", () => {
    const listed = checkHistory(
      writes,
      faults,
      end({ zeroLoss: false, idsOnPrimary: new Set([1, 2, 4, 5, 6]), reportedIds: new Set([3]) }),
    );
    expect(listed.problems).toEqual([]);
    expect(listed.missing).toBe(1);
    const unlisted = checkHistory(
      writes,
      faults,
      end({ zeroLoss: false, idsOnPrimary: new Set([1, 2, 4, 5, 6]) }),
    );
    expect(unlisted.problems).toEqual([
      expect.stringMatching(
        /^1 acknowledged writes are not on the final primary b and no rejoin report lists them: 3/,
      ),
    ]);
    expect(unlisted.kinds[0]).toMatchObject({ missing: 1, unreported: 1 });
  });

  it("(b) a write the old primary acknowledges after the new primary's first is split brain; one before is not", () => {
    const history = [...writes, w(7, "a", 15.9), w(8, "a", 16.5), w(9, "c", 17.5)];
    const v = checkHistory(history, faults, end({ idsOnPrimary: new Set([1, 2, 3, 4, 5, 6, 7, 8, 9]) }));
    expect(v.splitBrain).toBe(2);
    expect(v.kinds[0]?.splitBrain).toBe(2);
    expect(v.problems).toEqual([
      expect.stringMatching(
        /^split brain after fault 1 .*: 2 writes acknowledged by another node after that: 8 \(a at .*\), 9 \(c at /,
      ),
    ]);
  });

  it("(b, e) attributes writes to the fault they follow, up to the next one", () => {
    const two = [...faults, fault("SIGSTOP of the primary's node past its lease", 20, "b", "c")];
    const history = [...writes, w(7, "b", 20.5), w(8, "c", 24), w(9, "c", 25)];
    const v = checkHistory(
      history,
      two,
      end({
        primary: "c",
        idsOnPrimary: new Set([1, 2, 3, 4, 5, 6, 7, 8, 9]),
        nodes: [node("a", false), node("b", false), node("c", true)],
      }),
    );
    expect(v.problems).toEqual([]);
    expect(v.kinds.map((k) => [k.kind, k.acknowledged, k.recoveryMs])).toEqual([
      ["kill -9 of the primary's whole server", 4, [6000]],
      ["SIGSTOP of the primary's node past its lease", 3, [4000]],
    ]);
  });

  it("(e) a fault after which the new primary acknowledged nothing is a problem", () => {
    const v = checkHistory(writes.slice(0, 3), faults, end({ idsOnPrimary: new Set([1, 2, 3]) }));
    expect(v.problems).toEqual([
      expect.stringMatching(
        /^fault 1 \(kill -9 of the primary's whole server of a\): the new primary b acknowledged no write before the end/,
      ),
    ]);
    expect(v.kinds[0]?.recoveryMs).toEqual([null]);
    expect(v.kinds[0]?.medianMs).toBeNull();
  });

  it("(c) a node that differs from the primary is a problem", () => {
    const v = checkHistory(
      writes,
      faults,
      end({
        nodes: [node("a", false, ["public.acked_ids: 1 row missing"]), node("b", true), node("c", false)],
      }),
    );
    expect(v.nodesEqual).toBe(2);
    expect(v.problems).toEqual(["a is not equal to the primary b: public.acked_ids: 1 row missing"]);
  });

  it("(d) two nodes answering /primary, or two writable databases, or none, is a problem", () => {
    const two = checkHistory(
      writes,
      faults,
      end({ nodes: [node("a", true), node("b", true), node("c", false)] }),
    );
    expect(two.problems).toEqual([
      "exactly one writable primary (b) expected at the end; /primary answers 200 on: a, b",
      "exactly one database (b's) should accept a write at the end; accepting: a, b",
    ]);
    const none = checkHistory(
      writes,
      faults,
      end({
        nodes: [
          node("a", false),
          { ...node("b", true), primaryAnswer: 0, acceptsWrite: false },
          node("c", false),
        ],
      }),
    );
    expect(none.problems).toEqual([
      "exactly one writable primary (b) expected at the end; /primary answers 200 on: none",
      "exactly one database (b's) should accept a write at the end; accepting: none",
    ]);
  });

  it("median of an even and an odd count; the report has a row per kind", () => {
    expect(median([3, 1, 2])).toBe(2);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([])).toBeNull();
    const report = formatReport("zero-loss", checkHistory(writes, faults, end()));
    expect(report).toContain(
      "| zero-loss | kill -9 of the primary's whole server | 1 | 4 | 0 (0) | 0 | 6.0 s | 6.0 s |",
    );
    expect(report).toContain(
      "zero-loss: 6 writes acknowledged in all, 0 missing on the final primary, 0 split-brain writes, nodes equal at the end: 3 of 3; problems: 0",
    );
  });
});
