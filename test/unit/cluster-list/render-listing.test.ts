// `diffrelay list`'s table: the lease as each node sees it and when it would start a failover.
import { describe, expect, it } from "vitest";
import {
  type ClusterListing,
  type ListedNode,
  renderListing,
} from "../../../operations/cluster-list/index.js";

const TTL = 5000;

function node(name: string, role: "primary" | "standby", lease: ListedNode["lease"]): ListedNode {
  return {
    name,
    apiUrl: `http://${name}:9464`,
    role,
    reported: { role, epoch: 2, ready: true, lagMs: null, lastError: null, at: "t", rejoin: null },
    reachable: lease !== null,
    lease,
  };
}

const lease = (over: Partial<NonNullable<ListedNode["lease"]>>) => ({
  holder: "a",
  ttlMs: TTL,
  ageMs: 400,
  heldForMs: null,
  failoverInMs: null,
  election: null,
  electionRunning: false,
  ...over,
});

function listing(nodes: ListedNode[], withLease = true): ClusterListing {
  return {
    cluster: "c1",
    epoch: 2,
    phase: "stable",
    primary: "a",
    topic: "t",
    lease: withLease ? { holder: "a", epoch: 2, ttlMs: TTL, renewedAt: "2026-12-06T06:00:00.000Z" } : null,
    nodes,
  };
}

const row = (text: string, name: string) => text.split("\n").find((l) => l.startsWith(`${name} `)) ?? "";

describe("diffrelay list's lease columns", () => {
  it("show what the primary still holds, each standby's lease age and when it would elect", () => {
    const text = renderListing(
      listing([
        node("a", "primary", lease({ ageMs: 100, heldForMs: 2100 })),
        node("b", "standby", lease({ ageMs: 400, failoverInMs: 4600 })),
        node("c", "standby", lease({ ageMs: 5200, failoverInMs: 0 })),
        node("d", "standby", lease({ ageMs: 5300, failoverInMs: 0, electionRunning: true })),
        node("e", "standby", lease({ election: "automatic failover is off (--manual-failover)" })),
        node("f", "standby", null),
      ]),
    );
    expect(text.split("\n")[0]).toBe(
      "cluster c1: epoch 2, phase stable, primary a, topic t, lease held by a (ttl 5.0 s, renewed 2026-12-06T06:00:00.000Z)",
    );
    expect(row(text, "a")).toMatch(/ held, 2\.1 s left +- +http:\/\/a:9464$/);
    expect(row(text, "b")).toMatch(/ age 0\.4 s of 5\.0 s +in 4\.6 s +http:\/\/b:9464$/);
    expect(row(text, "c")).toMatch(/ age 5\.2 s of 5\.0 s +due +http:\/\/c:9464$/);
    expect(row(text, "d")).toMatch(/ age 5\.3 s of 5\.0 s +electing +http:\/\/d:9464$/);
    expect(row(text, "e")).toMatch(/ age 0\.4 s of 5\.0 s +- +http:\/\/e:9464$/);
    expect(row(text, "f")).toMatch(/ - +- +http:\/\/f:9464 \(unreachable\)$/);
  });

  it("say when the current epoch has no lease renewal", () => {
    const text = renderListing(listing([], false));
    expect(text.split("\n")[0]).toMatch(/, no lease renewal for this epoch$/);
  });
});
