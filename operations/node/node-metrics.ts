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
  return { fenced, rejoins, unpublished };
}
