import { Counter, Gauge, type Registry } from "prom-client";

/** What a rejoin ended with: its method, or failed (the node stays fenced). */
export const REJOIN_OUTCOMES = ["rewind", "reseed", "already-rejoined", "failed"] as const;

export type NodeMetrics = ReturnType<typeof createNodeMetrics>;

/**
 * The node's own metrics, in every registry it may serve (the capture's while
 * primary, the applier's otherwise), so /metrics shows them in either role.
 */
export function createNodeMetrics(registers: Registry[]) {
  const fenced = new Gauge({
    name: "diffrelay_node_fenced",
    help: "1 while the node's database is fenced as a stale primary (read-only, or no connections), else 0",
    registers,
  });
  fenced.set(0);
  const rejoins = new Counter({
    name: "diffrelay_node_rejoins_total",
    help: "Automatic rejoins of this node's database as a standby of the new primary, by outcome (failed: it stays fenced)",
    labelNames: ["outcome"],
    registers,
  });
  for (const outcome of REJOIN_OUTCOMES) rejoins.inc({ outcome }, 0);
  const unpublished = new Gauge({
    name: "diffrelay_node_rejoin_unpublished_transactions",
    help: "Transactions the last rejoin found committed here that never reached the new primary (NaN until a rejoin)",
    registers,
  });
  unpublished.set(Number.NaN);
  const leaseRemaining = new Gauge({
    name: "diffrelay_node_lease_remaining_seconds",
    help: "On the primary: how long its lease is still held without another renewal read back (negative: lapsed; NaN: not the primary)",
    registers,
  });
  leaseRemaining.set(Number.NaN);
  const leaseAge = new Gauge({
    name: "diffrelay_node_lease_age_seconds",
    help: "Seconds since this node last saw a renewal of the current primary's lease (or other progress of the cluster); the standbys elect past the TTL",
    registers,
  });
  const leaseTtl = new Gauge({
    name: "diffrelay_node_lease_ttl_seconds",
    help: "The current primary's lease TTL: the standbys elect when no renewal was seen for this long",
    registers,
  });
  const leaseLost = new Counter({
    name: "diffrelay_node_lease_lost_total",
    help: "Times this node, as the primary, fenced its own database because its lease lapsed (no renewal read back in time)",
    registers,
  });
  const elections = new Counter({
    name: "diffrelay_node_elections_total",
    help: "Automatic failovers this node started to itself, by outcome (started; won: it became the primary; lost: another claimed the epoch first; failed)",
    labelNames: ["outcome"],
    registers,
  });
  for (const outcome of ELECTION_OUTCOMES) elections.inc({ outcome }, 0);
  const failoverSeconds = new Gauge({
    name: "diffrelay_node_last_failover_seconds",
    help: "The last automatic failover this node won: seconds from the start of its election to its writable primary (NaN: none yet)",
    registers,
  });
  failoverSeconds.set(Number.NaN);
  const writablePrimary = new Gauge({
    name: "diffrelay_node_writable_primary",
    help: "1 while this node is the writable primary of the current epoch holding its lease (what /primary answers 200 for), else 0",
    registers,
  });
  writablePrimary.set(0);
  const clusterEpoch = new Gauge({
    name: "diffrelay_node_cluster_epoch",
    help: "The cluster's current epoch as this node reads it (-1 before it has read a state): a change is a role change",
    registers,
  });
  clusterEpoch.set(-1);
  const serverDown = new Gauge({
    name: "diffrelay_node_database_down",
    help: "1 while the node waits for its database server, which does not answer (to fence it after a lost lease, or to take a role), else 0",
    registers,
  });
  serverDown.set(0);
  return {
    serverDown,
    fenced,
    rejoins,
    unpublished,
    writablePrimary,
    clusterEpoch,
    leaseRemaining,
    leaseAge,
    leaseTtl,
    leaseLost,
    elections,
    failoverSeconds,
  };
}

/** How an election this node started ended. */
export const ELECTION_OUTCOMES = ["started", "won", "lost", "failed"] as const;
