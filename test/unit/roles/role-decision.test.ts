import { describe, expect, it } from "vitest";
import type { ClusterState, ClusterView, NodeReport } from "../../../operations/cluster/index.js";
import {
  type DatabaseObservation,
  decideStep,
  type RoleInputs,
  STALLED_CHANGE_MS,
} from "../../../operations/roles/index.js";

const NOW = Date.parse("2026-12-06T02:00:00Z");
const topics = (epoch: number) => ({
  data: epoch === 0 ? "p.app" : `p.app.e${epoch}`,
  schemas: epoch === 0 ? "p.app.schemas" : `p.app.e${epoch}.schemas`,
});

/** `from.epoch`: the epoch the change left (a failover out of a stalled change skips one); default epoch - 1. */
function state(
  epoch: number,
  primary: string,
  phase = "stable",
  from?: { primary: string; end?: string; epoch?: number },
): ClusterState {
  return {
    cluster: "app",
    epoch,
    primary,
    members: ["a", "b", "c"].map((name) => ({ name, apiUrl: `http://${name}` })),
    phase,
    topics: topics(epoch),
    previous: from
      ? {
          epoch: from.epoch ?? epoch - 1,
          primary: from.primary,
          topics: topics(from.epoch ?? epoch - 1),
          drainedEndOffset: from.end ?? null,
        }
      : null,
    writtenBy: "test",
    writtenAt: new Date(NOW).toISOString(),
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
    writableAt: role === "primary" ? new Date(NOW - 60_000).toISOString() : null,
    sourceId: null,
    lagMs: null,
    lastError: null,
    at: new Date(NOW - 1000).toISOString(),
    ...extra,
  };
}

function view(s: ClusterState | null, reports: NodeReport[] = [], claims?: number[]): ClusterView {
  const claimed = claims ?? (s ? [s.epoch] : []);
  return {
    state: s,
    highestClaim: Math.max(-1, ...claimed),
    claims: claimed,
    states: new Map(s ? [[s.epoch, s]] : []),
    reports: new Map(reports.map((r) => [r.node, r])),
    leases: new Map(),
    highestStateEpoch: -1,
  };
}

const db = (o: Partial<DatabaseObservation> = {}): DatabaseObservation => ({
  connectable: true,
  hasCaptureSlot: false,
  positionOnCurrent: null,
  positionOnPrevious: null,
  ...o,
});

function inputs(o: Partial<RoleInputs>): RoleInputs {
  return {
    me: "a",
    role: { kind: "starting" },
    view: null,
    database: null,
    handedOver: null,
    initialPrimary: "a",
    bootstrapEpoch: 0,
    autoRejoin: true,
    rejoinFailed: null,
    now: NOW,
    ...o,
  };
}

const cases: { name: string; given: Partial<RoleInputs>; step: Record<string, unknown> }[] = [
  // Bootstrap (defect 1: never on a topic read halfway, never over a cluster that has states).
  { name: "topic not read to its end: wait", given: { view: null }, step: { kind: "wait" } },
  {
    name: "no state, empty topic, initial primary: bootstrap at --epoch with a claim",
    given: { view: view(null), bootstrapEpoch: 5 },
    step: { kind: "bootstrap", epoch: 5, claim: true },
  },
  {
    name: "no state, another node named initial primary: wait",
    given: { view: view(null), me: "b" },
    step: { kind: "wait" },
  },
  {
    name: "a claim without any state (a bootstrap died before publishing): finish it at that epoch",
    given: { view: view(null, [], [0]), bootstrapEpoch: 7 },
    step: { kind: "bootstrap", epoch: 0, claim: false },
  },
  {
    name: "several claims, no state (the states were lost): fail",
    given: { view: view(null, [], [0, 1, 2]) },
    step: { kind: "fail" },
  },
  {
    name: "restart of the initial primary, the cluster stable with it as primary: start primary",
    given: { view: view(state(0, "a")), database: db({ hasCaptureSlot: true }) },
    step: { kind: "start-primary" },
  },
  {
    name: "restart of the initial primary after a switchover (DIFFRELAY_EPOCH=7 changes nothing): standby",
    given: { view: view(state(1, "b")), bootstrapEpoch: 7, database: db({ positionOnCurrent: 12n }) },
    step: { kind: "start-standby" },
  },
  // Starting.
  {
    name: "starting: observe the database first",
    given: { view: view(state(1, "b")) },
    step: { kind: "observe-database" },
  },
  {
    name: "starting in a change with a position on the previous topic: follow the change",
    given: {
      view: view(state(1, "b", "promoting", { primary: "a", end: "9" })),
      me: "c",
      database: db({ positionOnPrevious: 4n }),
    },
    step: { kind: "follow-change" },
  },
  {
    name: "starting, database refuses connections, not the primary: fence",
    given: { view: view(state(1, "b")), database: db({ connectable: false }) },
    step: { kind: "fence" },
  },
  {
    name: "starting, database refuses connections (fenced by its node's stop, lost lease or watchdog), named the stable primary: start primary (it takes the lease back first)",
    given: { view: view(state(1, "a")), database: db({ connectable: false }) },
    step: { kind: "start-primary" },
  },
  {
    name: "starting, database refuses connections, a change to it that never promoted it: fail",
    given: {
      view: view(state(2, "a", "promoting", { primary: "b", end: "10" })),
      database: db({ connectable: false }),
    },
    step: { kind: "fail" },
  },
  {
    name: "starting, holds the slot and no position: fence (stale primary)",
    given: { view: view(state(1, "b")), database: db({ hasCaptureSlot: true }) },
    step: { kind: "fence" },
  },
  {
    name: "starting, no position on this or the previous topic (defect 11): catch up the chain (refused with the seed command when there is none)",
    given: { view: view(state(1, "b")), database: db() },
    step: { kind: "catch-up" },
  },
  {
    name: "starting as the primary of a change never marked stable, its report writable: start primary",
    given: {
      view: view(state(2, "a", "promoting", { primary: "b", end: "5" }), [report("a", 2, "primary")]),
      database: db({ positionOnPrevious: 5n }),
    },
    step: { kind: "start-primary" },
  },
  {
    name: "starting old primary that handed over and stopped before following (defect 3): follow from its fence end",
    given: {
      view: view(
        state(2, "c", "promoting", { primary: "a", end: "40", epoch: 0 }),
        [report("a", 1, "switching", { fencedEndOffset: "40", fencedAt: "x" })],
        [0, 1, 2],
      ),
      database: db(),
    },
    step: { kind: "follow-after-hand-over", end: 40n },
  },
  // Primary.
  {
    name: "primary of the current epoch: wait",
    given: { role: { kind: "primary", epoch: 1 }, view: view(state(1, "a")) },
    step: { kind: "wait" },
  },
  {
    name: "primary of a change its command left at promoting, writable for less than STALLED_CHANGE_MS: wait",
    given: {
      role: { kind: "primary", epoch: 1 },
      view: view(state(1, "a", "promoting", { primary: "b", end: "10" }), [
        report("a", 1, "primary", { writableAt: new Date(NOW - STALLED_CHANGE_MS + 1).toISOString() }),
      ]),
    },
    step: { kind: "wait" },
  },
  {
    name: "primary of a change its command left at promoting (the command or election died), writable for STALLED_CHANGE_MS: finish it",
    given: {
      role: { kind: "primary", epoch: 1 },
      view: view(state(1, "a", "promoting", { primary: "b", end: "10" }), [
        report("a", 1, "primary", { writableAt: new Date(NOW - STALLED_CHANGE_MS).toISOString() }),
      ]),
    },
    step: { kind: "finish-change" },
  },
  {
    name: "primary of a promoting change whose own report does not say it took writes yet: wait",
    given: {
      role: { kind: "primary", epoch: 1 },
      view: view(state(1, "a", "promoting", { primary: "b", end: "10" }), [
        report("a", 1, "primary", { writableAt: null }),
      ]),
    },
    step: { kind: "wait" },
  },
  {
    name: "primary asked to hand over (fencing, previous is its epoch): hand over",
    given: { role: { kind: "primary", epoch: 0 }, view: view(state(1, "b", "fencing", { primary: "a" })) },
    step: { kind: "hand-over" },
  },
  {
    name: "primary, a failover moved on (halting): fence",
    given: { role: { kind: "primary", epoch: 0 }, view: view(state(1, "b", "halting", { primary: "a" })) },
    step: { kind: "fence" },
  },
  {
    name: "primary, a failover moved on (promoting): fence",
    given: {
      role: { kind: "primary", epoch: 0 },
      view: view(state(1, "b", "promoting", { primary: "a", end: "3" })),
    },
    step: { kind: "fence" },
  },
  {
    name: "primary two epochs behind: fence",
    given: { role: { kind: "primary", epoch: 0 }, view: view(state(2, "b", "fencing", { primary: "c" })) },
    step: { kind: "fence" },
  },
  // Standby and switching.
  {
    name: "standby of the current epoch: wait, with the primary's silence observed",
    given: {
      role: { kind: "standby", epoch: 1 },
      me: "c",
      view: view(state(1, "b"), [report("b", 1, "primary")]),
    },
    step: { kind: "wait", primarySilentMs: 1000 },
  },
  {
    name: "standby, a switchover (fencing): follow the change",
    given: {
      role: { kind: "standby", epoch: 0 },
      me: "c",
      view: view(state(1, "b", "fencing", { primary: "a" })),
    },
    step: { kind: "follow-change" },
  },
  {
    name: "standby, a failover halts it (defect 4): follow the change",
    given: {
      role: { kind: "standby", epoch: 0 },
      me: "c",
      view: view(state(1, "b", "halting", { primary: "a" })),
    },
    step: { kind: "follow-change" },
  },
  {
    name: "standby that missed a change (defect 11): catch up the chain of epochs",
    given: {
      role: { kind: "standby", epoch: 0 },
      me: "c",
      view: view(state(2, "b", "stable", { primary: "a" })),
    },
    step: { kind: "catch-up" },
  },
  {
    name: "switching, superseded by a failover from the same base (defect 3): follow the change",
    given: {
      role: { kind: "switching", from: 0, epoch: 1 },
      me: "c",
      view: view(state(2, "b", "promoting", { primary: "a", end: "8", epoch: 0 }), [], [0, 1, 2]),
    },
    step: { kind: "follow-change" },
  },
  {
    name: "old primary switching after its hand-over, superseded (defect 3): follow from its fence end",
    given: {
      role: { kind: "switching", from: 0, epoch: 1 },
      handedOver: { from: 0, end: 8n },
      view: view(state(2, "b", "promoting", { primary: "a", end: "8", epoch: 0 }), [], [0, 1, 2]),
    },
    step: { kind: "follow-after-hand-over", end: 8n },
  },
  {
    name: "old primary switching without a hand-over it knows: fail",
    given: {
      role: { kind: "switching", from: 0, epoch: 1 },
      view: view(state(2, "b", "promoting", { primary: "a", end: "8" })),
    },
    step: { kind: "fail" },
  },
  {
    name: "switching at the current epoch: wait (its step is under way)",
    given: {
      role: { kind: "switching", from: 0, epoch: 1 },
      me: "c",
      view: view(state(1, "b", "promoting", { primary: "a", end: "8" })),
    },
    step: { kind: "wait" },
  },
  // Fenced.
  {
    name: "fenced, automatic rejoin: rejoin",
    given: { role: { kind: "fenced", epoch: 1 }, view: view(state(1, "b", "stable", { primary: "a" })) },
    step: { kind: "rejoin" },
  },
  {
    name: "fenced, its rejoin at this epoch failed: wait (never retried in a loop)",
    given: {
      role: { kind: "fenced", epoch: 1 },
      rejoinFailed: { epoch: 1, retryAt: null },
      view: view(state(1, "b", "stable", { primary: "a" })),
    },
    step: { kind: "wait" },
  },
  {
    name: "fenced, its rejoin at this epoch failed on a server that did not answer: wait until its retry time",
    given: {
      role: { kind: "fenced", epoch: 1 },
      rejoinFailed: { epoch: 1, retryAt: NOW + 1 },
      view: view(state(1, "b", "stable", { primary: "a" })),
    },
    step: { kind: "wait" },
  },
  {
    name: "fenced, its rejoin at this epoch failed on a server that did not answer: rejoin again at its retry time",
    given: {
      role: { kind: "fenced", epoch: 1 },
      rejoinFailed: { epoch: 1, retryAt: NOW },
      view: view(state(1, "b", "stable", { primary: "a" })),
    },
    step: { kind: "rejoin" },
  },
  {
    name: "fenced, its rejoin failed at an earlier epoch: rejoin again",
    given: {
      role: { kind: "fenced", epoch: 1 },
      rejoinFailed: { epoch: 1, retryAt: null },
      view: view(state(2, "b", "stable", { primary: "c" })),
    },
    step: { kind: "rejoin" },
  },
  {
    name: "fenced, --manual-rejoin: wait",
    given: {
      role: { kind: "fenced", epoch: 1 },
      autoRejoin: false,
      view: view(state(1, "b", "stable", { primary: "a" })),
    },
    step: { kind: "wait" },
  },
];

describe("the node's role decision", () => {
  it.each(cases)("$name", ({ given, step }) => {
    expect(decideStep(inputs(given))).toMatchObject(step);
  });

  it("is pure: the same inputs give the same step", () => {
    for (const c of cases) expect(decideStep(inputs(c.given))).toEqual(decideStep(inputs(c.given)));
  });
});
