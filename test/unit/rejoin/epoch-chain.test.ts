import { describe, expect, it } from "vitest";
import type { ClusterState } from "../../../operations/cluster/index.js";
import { epochChain, lastEpochAsPrimary, startingPoint } from "../../../operations/rejoin/epoch-chain.js";

const topics = (epoch: number) => {
  const data = epoch === 0 ? "dr.app" : `dr.app.e${epoch}`;
  return { data, schemas: `${data}.schemas` };
};

function state(
  epoch: number,
  primary: string,
  previous: { epoch: number; primary: string; end: string | null } | null,
  phase = "stable",
): ClusterState {
  return {
    cluster: "app",
    epoch,
    primary,
    members: [{ name: primary, apiUrl: `http://${primary}` }],
    phase,
    topics: topics(epoch),
    previous: previous && {
      epoch: previous.epoch,
      primary: previous.primary,
      topics: topics(previous.epoch),
      drainedEndOffset: previous.end,
    },
    writtenBy: "test",
    writtenAt: "2026-12-01T00:00:00Z",
  };
}

const byEpoch = (...states: ClusterState[]) => new Map(states.map((s) => [s.epoch, s]));
const allKept = (...epochs: number[]) => new Map(epochs.map((e) => [topics(e).data, 0n]));

// a → b (failover, epoch 0 drained to 40) → c (switchover, epoch 1 drained to 25).
const e0 = state(0, "a", null);
const e1 = state(1, "b", { epoch: 0, primary: "a", end: "40" });
const e2 = state(2, "c", { epoch: 1, primary: "b", end: "25" });

describe("the chain of epochs a rejoining node follows", () => {
  it("a standby two role changes behind applies the rest of its topic, then the next, then follows the current one", () => {
    expect(
      epochChain({
        states: byEpoch(e0, e1, e2),
        current: e2,
        from: { epoch: 0, offset: 31n },
        lowOffsets: allKept(0, 1, 2),
      }),
    ).toEqual({
      kind: "follow",
      target: { epoch: 2, primary: "c", topics: topics(2) },
      links: [
        { epoch: 0, topics: topics(0), from: 31n, end: 40n },
        { epoch: 1, topics: topics(1), from: 0n, end: 25n },
        { epoch: 2, topics: topics(2), from: 0n, end: null },
      ],
    });
  });

  it("an old primary holds its own topic as drained: nothing of it to apply, and retention of it does not matter", () => {
    const chain = epochChain({
      states: byEpoch(e0, e1, e2),
      current: e2,
      from: { epoch: 0, offset: null },
      lowOffsets: new Map([
        [topics(0).data, 40n],
        [topics(1).data, 0n],
      ]),
    });
    expect(chain.kind === "follow" && chain.links.map((l) => [l.epoch, l.from, l.end])).toEqual([
      [0, 40n, 40n],
      [1, 0n, 25n],
      [2, 0n, null],
    ]);
  });

  it("follows `previous`, not epoch numbers: a failover out of a stalled switchover skips the epoch it superseded", () => {
    const stalled = state(1, "b", { epoch: 0, primary: "a", end: null }, "fencing");
    const failover = state(2, "c", { epoch: 0, primary: "a", end: "40" });
    const chain = epochChain({
      states: byEpoch(e0, stalled, failover),
      current: failover,
      from: { epoch: 0, offset: 40n },
      lowOffsets: allKept(0, 2),
    });
    expect(chain.kind === "follow" && chain.links.map((l) => l.epoch)).toEqual([0, 2]);
  });

  it("during a switchover's fencing the chain ends at the epoch it leaves", () => {
    const fencing = state(3, "a", { epoch: 2, primary: "c", end: null }, "fencing");
    const chain = epochChain({
      states: byEpoch(e0, e1, e2, fencing),
      current: fencing,
      from: { epoch: 0, offset: 40n },
      lowOffsets: allKept(0, 1, 2),
    });
    expect(chain.kind === "follow" && chain.target).toEqual({ epoch: 2, primary: "c", topics: topics(2) });
    expect(chain.kind === "follow" && chain.links.map((l) => [l.epoch, l.end])).toEqual([
      [0, 40n],
      [1, 25n],
      [2, null],
    ]);
  });

  it("re-seeds when an epoch on the way has no record (a gap)", () => {
    const chain = epochChain({
      states: byEpoch(e0, e2),
      current: e2,
      from: { epoch: 0, offset: 0n },
      lowOffsets: allKept(0, 1, 2),
    });
    expect(chain).toEqual({
      kind: "reseed",
      target: expect.anything(),
      reasons: [
        expect.stringMatching(/^epoch 1 \(between 0 and 2\) has no state record on the cluster topic/),
      ],
    });
  });

  it("re-seeds when a record does not say where the epoch before it ends", () => {
    const e2NoEnd = state(2, "c", { epoch: 1, primary: "b", end: null }, "promoting");
    const e3 = state(3, "a", { epoch: 2, primary: "c", end: "5" });
    const chain = epochChain({
      states: byEpoch(e0, e1, e2NoEnd, e3),
      current: e3,
      from: { epoch: 0, offset: 0n },
      lowOffsets: allKept(0, 1, 2, 3),
    });
    expect(chain).toEqual({
      kind: "reseed",
      target: expect.anything(),
      reasons: [
        expect.stringMatching(
          /^epoch 2's record does not say where epoch 1's topic dr\.app\.e1 ends \(its drainedEndOffset is unknown\)/,
        ),
      ],
    });
  });

  it("re-seeds when the node's epoch was superseded, so it is not on the chain", () => {
    const abandoned = state(1, "b", { epoch: 0, primary: "a", end: "40" }, "promoting");
    const failover = state(2, "c", { epoch: 0, primary: "a", end: "40" });
    const chain = epochChain({
      states: byEpoch(e0, abandoned, failover),
      current: failover,
      from: { epoch: 1, offset: null },
      lowOffsets: allKept(0, 1, 2),
    });
    expect(chain).toEqual({
      kind: "reseed",
      target: expect.anything(),
      reasons: [
        expect.stringMatching(/^epoch 1 is not on the chain .*\(2 ← 0\): its role change was superseded/),
      ],
    });
  });

  it("re-seeds when the node applied its topic past the drained end", () => {
    const chain = epochChain({
      states: byEpoch(e0, e1, e2),
      current: e2,
      from: { epoch: 0, offset: 41n },
      lowOffsets: allKept(0, 1, 2),
    });
    expect(chain).toEqual({
      kind: "reseed",
      target: expect.anything(),
      reasons: [
        "this database holds dr.app up to offset 41, past the end 40 the next epoch drained it to: it applied changes that no later epoch holds",
      ],
    });
  });

  it("re-seeds when retention deleted a part it needs, or a topic is gone; a part it does not need may be deleted", () => {
    const chain = epochChain({
      states: byEpoch(e0, e1, e2),
      current: e2,
      from: { epoch: 0, offset: 31n },
      lowOffsets: new Map([
        [topics(0).data, 30n],
        [topics(2).data, 7n],
      ]),
    });
    expect(chain).toEqual({
      kind: "reseed",
      target: expect.anything(),
      reasons: [
        "dr.app.e1 (epoch 1) no longer exists: offsets 0..24 of it must be applied",
        "Kafka's retention deleted dr.app.e2 (epoch 2) up to offset 7: from offset 0 of it must be applied",
      ],
    });
    const below = epochChain({
      states: byEpoch(e0, e1, e2),
      current: e2,
      from: { epoch: 0, offset: 31n },
      lowOffsets: new Map([
        [topics(0).data, 32n],
        [topics(1).data, 0n],
      ]),
    });
    expect(below).toEqual({
      kind: "reseed",
      target: expect.anything(),
      reasons: [
        "Kafka's retention deleted dr.app (epoch 0) up to offset 32: offsets 31..39 of it must be applied",
      ],
    });
  });

  it("a standby starts from the latest epoch it applied something of: a position at offset 0 applied nothing", () => {
    expect(startingPoint([])).toBeNull();
    expect(
      startingPoint([
        { epoch: 0, offset: 40n },
        { epoch: 2, offset: 0n },
        { epoch: 1, offset: 25n },
      ]),
    ).toEqual({ epoch: 1, offset: 25n });
    expect(
      startingPoint([
        { epoch: 3, offset: 0n },
        { epoch: 1, offset: 0n },
      ]),
    ).toEqual({ epoch: 3, offset: 0n });
  });

  it("the epoch a fenced node was primary of: the latest that named it and got past fencing", () => {
    const named = state(3, "a", { epoch: 2, primary: "c", end: null }, "fencing");
    expect(lastEpochAsPrimary(byEpoch(e0, e1, e2, named), "a")).toBe(0);
    expect(lastEpochAsPrimary(byEpoch(e0, e1, e2), "c")).toBe(2);
    expect(lastEpochAsPrimary(byEpoch(e0, e1, e2), "z")).toBeNull();
  });
});
