import { type ClusterView, changeBase, holdsBase } from "../cluster/index.js";

export interface ElectionInputs {
  me: string;
  view: ClusterView;
  /** This node starts elections (false: --manual-failover). */
  autoFailover: boolean;
  /** How long the cluster has shown no progress (LeaseObserver.silentMs). */
  silentMs: number;
  /** The current primary's lease TTL. */
  ttlMs: number;
  /** How long a role change may show no progress before an election supersedes it. */
  stalledChangeMs: number;
}

export type ElectionDecision =
  | { kind: "none"; why: string; failoverInMs: number | null }
  | { kind: "elect"; why: string; rank: number };

/**
 * Whether this node starts a failover to itself now. The current primary's
 * lease lapsed (no renewal seen for its TTL), or a role change has shown no
 * progress for `stalledChangeMs`; the candidates are the ready standbys that
 * hold the base epoch's topic, by failover priority (0: never), then the most
 * applied, then name. Every node ranks them alike from the same view; the
 * best starts at once, the next one TTL later, and so on, so a dead or stuck
 * candidate is superseded. Two that start together cannot both win: each
 * claims the next epoch, which Kafka creates for one of them only.
 */
export function decideElection(inputs: ElectionInputs): ElectionDecision {
  const { me, view } = inputs;
  const from = changeBase(view);
  if (!from) return none("no cluster state yet", null);
  const base = from.kind === "serving" ? from.state : from.base;
  if (base.primary === me && from.kind === "serving") return none("this node is the primary", null);
  const limit = from.kind === "serving" ? inputs.ttlMs : inputs.stalledChangeMs;
  const candidates = base.members
    .map((m) => m.name)
    .filter((n) => n !== base.primary && holdsBase(view, from, n))
    .map((n) => ({ name: n, report: view.reports.get(n) }))
    .filter(({ report }) => (report?.failoverPriority ?? 1) > 0 && report?.autoFailover !== false)
    .sort(
      (x, y) =>
        (y.report?.failoverPriority ?? 1) - (x.report?.failoverPriority ?? 1) ||
        compareOffsets(y.report?.appliedOffset, x.report?.appliedOffset) ||
        x.name.localeCompare(y.name),
    );
  const rank = candidates.findIndex((c) => c.name === me);
  const first = candidates[0]?.name;
  const what =
    from.kind === "serving"
      ? `the lease of ${base.primary} (epoch ${base.epoch})`
      : `the role change to epoch ${from.stalled.epoch}`;
  if (!inputs.autoFailover)
    return none(
      `automatic failover is off on this node (--manual-failover); candidate: ${first ?? "none"}`,
      null,
    );
  if (rank < 0)
    return none(
      `not a candidate (failover priority 0, or not a ready standby of epoch ${base.epoch}); candidate: ${first ?? "none"}`,
      null,
    );
  const startsAfter = limit + rank * inputs.ttlMs;
  if (inputs.silentMs < startsAfter)
    return none(`${what} holds; candidate rank ${rank}`, Math.round(startsAfter - inputs.silentMs));
  return {
    kind: "elect",
    rank,
    why:
      from.kind === "serving"
        ? `${what} lapsed: no renewal seen for ${Math.round(inputs.silentMs)} ms (TTL ${inputs.ttlMs} ms); this node is candidate rank ${rank}`
        : `${what} (phase ${from.stalled.phase}) shows no progress for ${Math.round(inputs.silentMs)} ms; this node is candidate rank ${rank}`,
  };
}

function none(why: string, failoverInMs: number | null): ElectionDecision {
  return { kind: "none", why, failoverInMs };
}

function compareOffsets(x: string | null | undefined, y: string | null | undefined): number {
  const a = x == null ? -1n : BigInt(x);
  const b = y == null ? -1n : BigInt(y);
  return a === b ? 0 : a > b ? 1 : -1;
}
