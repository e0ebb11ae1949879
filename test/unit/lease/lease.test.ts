import { describe, expect, it, vi } from "vitest";
import type {
  ClusterState,
  ClusterView,
  LeaseRecord,
  NodeReport,
} from "../../../operations/cluster/index.js";
import { decideElection, HOLDER_SHARE, LeaseHolder, LeaseObserver } from "../../../operations/lease/index.js";
import { createLogger } from "../../../src/observability/logger.js";

const topics = (epoch: number) => ({ data: `p.app.e${epoch}`, schemas: `p.app.e${epoch}.schemas` });

function state(epoch: number, primary: string, phase = "stable"): ClusterState {
  return {
    cluster: "app",
    epoch,
    primary,
    members: ["a", "b", "c"].map((name) => ({ name, apiUrl: `http://${name}` })),
    phase,
    topics: topics(epoch),
    previous:
      epoch === 0
        ? null
        : {
            epoch: epoch - 1,
            primary: "z",
            topics: topics(epoch - 1),
            drainedEndOffset: phase === "promoting" ? "5" : null,
          },
    writtenBy: "test",
    writtenAt: new Date().toISOString(),
  };
}

function standby(node: string, epoch: number, extra: Partial<NodeReport> = {}): NodeReport {
  return {
    node,
    epoch,
    role: "standby",
    ready: true,
    fencedEndOffset: null,
    fencedAt: null,
    writableAt: null,
    sourceId: null,
    lagMs: 0,
    lastError: null,
    at: new Date().toISOString(),
    ...extra,
  };
}

function view(s: ClusterState, reports: NodeReport[] = [], leases: LeaseRecord[] = []): ClusterView {
  return {
    state: s,
    states: new Map([[s.epoch, s]]),
    highestClaim: s.epoch,
    claims: [s.epoch],
    reports: new Map(reports.map((r) => [r.node, r])),
    leases: new Map(leases.map((l) => [l.holder, l])),
    highestStateEpoch: s.epoch,
  };
}

const lease = (holder: string, epoch: number, seq: number, incarnation = "i1"): LeaseRecord => ({
  holder,
  epoch,
  incarnation,
  seq,
  ttlMs: 5000,
  renewedAt: new Date().toISOString(),
});

class FakeClock {
  t = 1000;
  now = () => this.t;
}

describe("the lease observer (a standby's sight)", () => {
  it("counts a renewal from its arrival on its own clock, and a lapse a TTL after the latest", () => {
    const clock = new FakeClock();
    const observer = new LeaseObserver(clock.now, 5000);
    clock.t = 2000;
    observer.observe(view(state(0, "a"), [], [lease("a", 0, 1)]));
    expect(observer.lapsesAt("a", 0)).toBe(7000);
    clock.t = 4000;
    observer.observe(view(state(0, "a"), [], [lease("a", 0, 1)])); // the same renewal again: no extension
    expect(observer.lapsesAt("a", 0)).toBe(7000);
    expect(observer.silentMs()).toBe(2000);
    observer.observe(view(state(0, "a"), [], [lease("a", 0, 2)]));
    expect(observer.lapsesAt("a", 0)).toBe(9000);
    expect(observer.silentMs()).toBe(0);
  });

  it("counts a holder never seen renewing from when it started watching (never earlier)", () => {
    const clock = new FakeClock();
    const observer = new LeaseObserver(clock.now, 5000);
    expect(observer.lapsesAt("a", 3)).toBe(6000);
    observer.observe(view(state(3, "a"), [], [lease("a", 2, 9)])); // an older epoch's renewal does not count
    expect(observer.lapsesAt("a", 3)).toBe(6000);
  });
});

describe("the lease holder (the primary's side)", () => {
  function holder(
    clock: FakeClock,
    extended: number[] = [],
    withheld: { why: string | null } = { why: null },
  ) {
    const published: LeaseRecord[] = [];
    const h = new LeaseHolder({
      me: "a",
      epoch: 0,
      timings: { ttlMs: 5000, renewMs: 1000 },
      clock: clock.now,
      publish: async (l) => {
        published.push(l);
      },
      logger: createLogger("silent", "test"),
      onExtended: (ms) => extended.push(ms),
      withholdRenewal: () => withheld.why,
    });
    return { h, published };
  }

  it("holds nothing until a renewal is read back, then HOLDER_SHARE of the TTL from when it was sent", async () => {
    const clock = new FakeClock();
    const extended: number[] = [];
    const { h, published } = holder(clock, extended);
    h.start();
    await Promise.resolve();
    expect(h.holds()).toBe(false);
    const sent = published[0] as LeaseRecord;
    clock.t = 1400; // read back 400 ms later: counted from the send (1000)
    h.observe(view(state(0, "a"), [], [sent]));
    h.stop();
    expect(h.holds()).toBe(true);
    expect(h.remainingMs()).toBe(1000 + 5000 * HOLDER_SHARE - 1400);
    expect(extended).toEqual([1000 + 5000 * HOLDER_SHARE - 1400]);
    clock.t = 1000 + 5000 * HOLDER_SHARE;
    expect(h.holds()).toBe(false);
  });

  it("does not count a renewal read back with a state that no longer names it the primary (a failover's halting state before it)", async () => {
    const clock = new FakeClock();
    const { h, published } = holder(clock);
    h.start();
    await Promise.resolve();
    h.observe(view(state(1, "b", "halting"), [], [published[0] as LeaseRecord]));
    h.stop();
    expect(h.holds()).toBe(false);
  });

  it("does not count a renewal once any state of a later epoch was read, even one whose claim is not listed yet", async () => {
    const clock = new FakeClock();
    const { h, published } = holder(clock);
    h.start();
    await Promise.resolve();
    h.observe({ ...view(state(0, "a"), [], [published[0] as LeaseRecord]), highestStateEpoch: 1 });
    h.stop();
    expect(h.holds()).toBe(false);
  });

  it("sends no renewal while its node withholds them (its database server does not answer), and lets the lease lapse", async () => {
    vi.useFakeTimers();
    const clock = new FakeClock();
    const withheld = { why: null as string | null };
    const { h, published } = holder(clock, [], withheld);
    h.start();
    await Promise.resolve();
    h.observe(view(state(0, "a"), [], [published[0] as LeaseRecord]));
    expect(h.holds()).toBe(true);
    withheld.why = "its database server has not answered for 5000 ms";
    clock.t = 3000;
    await vi.advanceTimersByTimeAsync(3000); // three renewal times pass
    expect(published).toHaveLength(1);
    clock.t = 1000 + 5000 * HOLDER_SHARE;
    expect(h.holds()).toBe(false);
    withheld.why = null; // the server answers again: renewals go out and count again
    await vi.advanceTimersByTimeAsync(1000);
    expect(published).toHaveLength(2);
    h.observe(view(state(0, "a"), [], [published[1] as LeaseRecord]));
    h.stop();
    vi.useRealTimers();
    expect(h.holds()).toBe(true);
  });

  it("ignores another process's renewal under its name (an earlier run of the node)", async () => {
    const clock = new FakeClock();
    const { h } = holder(clock);
    h.start();
    await Promise.resolve();
    h.observe(view(state(0, "a"), [], [lease("a", 0, 50, "another-process")]));
    h.stop();
    expect(h.holds()).toBe(false);
  });
});

describe("the election", () => {
  const base = { autoFailover: true, ttlMs: 5000, stalledChangeMs: 30_000 };
  const reports = [standby("b", 0, { appliedOffset: "10" }), standby("c", 0, { appliedOffset: "12" })];

  it("waits while the primary's lease holds, saying when a failover would start", () => {
    const d = decideElection({ ...base, me: "c", view: view(state(0, "a"), reports), silentMs: 1000 });
    expect(d).toMatchObject({ kind: "none", failoverInMs: 4000 });
  });

  it("elects the most applied standby first once the lease lapsed; the next one a TTL later", () => {
    const v = view(state(0, "a"), reports);
    expect(decideElection({ ...base, me: "c", view: v, silentMs: 5000 })).toMatchObject({
      kind: "elect",
      rank: 0,
    });
    expect(decideElection({ ...base, me: "b", view: v, silentMs: 5000 })).toMatchObject({
      kind: "none",
      failoverInMs: 5000,
    });
    expect(decideElection({ ...base, me: "b", view: v, silentMs: 10_000 })).toMatchObject({
      kind: "elect",
      rank: 1,
    });
  });

  it("ranks by failover priority before progress; priority 0 and --manual-failover are never candidates", () => {
    const v = view(state(0, "a"), [
      standby("b", 0, { appliedOffset: "10", failoverPriority: 2 }),
      standby("c", 0, { appliedOffset: "12" }),
    ]);
    expect(decideElection({ ...base, me: "b", view: v, silentMs: 5000 })).toMatchObject({
      kind: "elect",
      rank: 0,
    });
    const never = view(state(0, "a"), [
      standby("b", 0, { failoverPriority: 0 }),
      standby("c", 0, { autoFailover: false }),
    ]);
    expect(decideElection({ ...base, me: "b", view: never, silentMs: 60_000 }).kind).toBe("none");
    expect(decideElection({ ...base, me: "c", view: never, silentMs: 60_000 }).kind).toBe("none");
    expect(
      decideElection({
        ...base,
        autoFailover: false,
        me: "c",
        view: view(state(0, "a"), reports),
        silentMs: 60_000,
      }).kind,
    ).toBe("none");
  });

  it("never elects while the primary's node runs with --manual-failover (it fences nothing when it dies)", () => {
    const v = view(state(0, "a"), [...reports, { ...standby("a", 0), role: "primary", autoFailover: false }]);
    expect(decideElection({ ...base, me: "c", view: v, silentMs: 60_000 }).kind).toBe("none");
  });

  it("leaves a stale or unready standby out, and the primary never elects", () => {
    const old = new Date(Date.now() - 60_000).toISOString();
    const v = view(state(0, "a"), [standby("b", 0, { at: old }), standby("c", 0, { ready: false })]);
    expect(decideElection({ ...base, me: "b", view: v, silentMs: 60_000 }).kind).toBe("none");
    expect(decideElection({ ...base, me: "c", view: v, silentMs: 60_000 }).kind).toBe("none");
    expect(
      decideElection({ ...base, me: "a", view: view(state(0, "a"), reports), silentMs: 60_000 }).kind,
    ).toBe("none");
  });

  it("supersedes a role change that shows no progress for stalledChangeMs, not sooner", () => {
    const v = view(state(1, "b", "halting"), [
      standby("c", 1, { role: "switching", ready: false }),
      standby("b", 0),
    ]);
    expect(decideElection({ ...base, me: "b", view: v, silentMs: 10_000 }).kind).toBe("none");
    expect(decideElection({ ...base, me: "b", view: v, silentMs: 30_000 })).toMatchObject({
      kind: "elect",
      rank: 0,
    });
    // c (switching in the stalled change) is a candidate too, ranked after b (by name here), a TTL later.
    expect(decideElection({ ...base, me: "c", view: v, silentMs: 30_000 })).toMatchObject({
      kind: "none",
      failoverInMs: 5000,
    });
  });
});
