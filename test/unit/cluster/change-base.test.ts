import { describe, expect, it } from "vitest";
import {
  type ClusterState,
  type ClusterView,
  changeBase,
  holdsBase,
  type NodeReport,
  nextEpoch,
} from "../../../operations/cluster/index.js";

const topics = (epoch: number) => ({ data: `p.app.e${epoch}`, schemas: `p.app.e${epoch}.schemas` });

function state(
  epoch: number,
  primary: string,
  phase: string,
  previous?: { primary: string; end?: string },
): ClusterState {
  return {
    cluster: "app",
    epoch,
    primary,
    members: ["a", "b", "c"].map((name) => ({ name, apiUrl: `http://${name}` })),
    phase,
    topics: topics(epoch),
    previous: previous
      ? {
          epoch: epoch - 1,
          primary: previous.primary,
          topics: topics(epoch - 1),
          drainedEndOffset: previous.end ?? null,
        }
      : null,
    writtenBy: "test",
    writtenAt: new Date().toISOString(),
  };
}

function report(
  node: string,
  epoch: number,
  role: NodeReport["role"],
  extra: Partial<NodeReport> = {},
): NodeReport {
  return {
    node,
    epoch,
    role,
    ready: role === "primary" || role === "standby",
    fencedEndOffset: null,
    fencedAt: null,
    writableAt: role === "primary" ? new Date().toISOString() : null,
    sourceId: null,
    lagMs: null,
    lastError: null,
    at: new Date().toISOString(),
    ...extra,
  };
}

const view = (s: ClusterState, reports: NodeReport[], claims: number[]): ClusterView => ({
  state: s,
  highestClaim: Math.max(...claims),
  claims,
  states: new Map([[s.epoch, s]]),
  reports: new Map(reports.map((r) => [r.node, r])),
  leases: new Map(),
});

describe("what a new role change starts from (no phase locks the cluster)", () => {
  it("a stable state serves", () => {
    const v = view(state(3, "a", "stable", { primary: "b", end: "5" }), [], [3]);
    expect(changeBase(v)).toMatchObject({ kind: "serving", state: { epoch: 3 } });
  });

  it("a switchover whose old primary never fenced starts from the epoch it left, end unknown", () => {
    const v = view(state(4, "b", "fencing", { primary: "a" }), [report("a", 3, "primary")], [3, 4]);
    expect(changeBase(v)).toMatchObject({
      kind: "halted",
      base: { epoch: 3, primary: "a", phase: "stable" },
      drainedEnd: null,
    });
  });

  it("the fence reported after the switchover gave up: the end is the fence's", () => {
    const v = view(
      state(4, "b", "fencing", { primary: "a" }),
      [report("a", 4, "switching", { fencedEndOffset: "77" })],
      [3, 4],
    );
    expect(changeBase(v)).toMatchObject({ kind: "halted", base: { epoch: 3 }, drainedEnd: "77" });
  });

  it("the target died during promoting: the epoch left, with the published end", () => {
    const v = view(
      state(4, "b", "promoting", { primary: "a", end: "77" }),
      [report("b", 3, "standby")],
      [3, 4],
    );
    expect(changeBase(v)).toMatchObject({ kind: "halted", base: { epoch: 3 }, drainedEnd: "77" });
  });

  it("a change whose new primary reports itself writable, never marked stable (exit 4, a follower that never came): serving", () => {
    const v = view(
      state(4, "b", "promoting", { primary: "a", end: "77" }),
      [report("b", 4, "primary")],
      [3, 4],
    );
    expect(changeBase(v)).toMatchObject({ kind: "serving", state: { epoch: 4, primary: "b" } });
  });

  it("the next epoch is above every claim: a claimant that died blocks nothing", () => {
    expect(nextEpoch(view(state(3, "a", "stable"), [], [3, 4, 5]))).toBe(6);
    expect(nextEpoch(view(state(3, "a", "stable"), [], [3]))).toBe(4);
  });

  it("a node of the stalled change that drained the base topic holds it; the old primary does not", () => {
    const v = view(
      state(4, "b", "promoting", { primary: "a", end: "77" }),
      [
        report("c", 4, "switching"),
        report("a", 4, "switching", { fencedEndOffset: "77" }),
        report("b", 3, "standby"),
      ],
      [3, 4],
    );
    const from = changeBase(v);
    if (!from) throw new Error("no base");
    expect(holdsBase(v, from, "c")).toBe(true);
    expect(holdsBase(v, from, "b")).toBe(true);
    expect(holdsBase(v, from, "a")).toBe(false);
  });
});
