import type { ClusterState, ClusterStore, NodeReport, RejoinSummary } from "../cluster/index.js";

/** The lease as one node's /status `lease` sees it (its own clock). */
export interface NodeLeaseView {
  /** The primary whose renewal of the current epoch this node has read; null: none yet. */
  holder: string | null;
  ttlMs: number;
  /** Since this node last saw a renewal (or other progress of the cluster). */
  ageMs: number;
  /** On the primary: how long its lease still holds without another renewal read back. */
  heldForMs: number | null;
  /** On a standby: when it would start an election if no renewal arrives (0: one is due or running). */
  failoverInMs: number | null;
  /** Why it does or does not elect now. */
  election: string | null;
  electionRunning: boolean;
}

/** One row of `diffrelay list`, as `patronictl list` shows a member. */
export interface ListedNode {
  name: string;
  apiUrl: string;
  /** What the cluster state gives it. */
  role: "primary" | "standby";
  /** What it reports, and for which epoch; null when it never reported. */
  reported:
    | (Pick<NodeReport, "role" | "epoch" | "ready" | "lagMs" | "lastError" | "at"> & {
        /** Its latest automatic rejoin: what the old primary lost (unpublished transactions) and how it rejoined. */
        rejoin: RejoinSummary | null;
      })
    | null;
  /** Whether its HTTP API answered /status just now. */
  reachable: boolean;
  /** Its /status `lease`, null when it did not answer or reads no state yet. */
  lease: NodeLeaseView | null;
}

export interface ClusterListing {
  cluster: string;
  epoch: number | null;
  phase: string | null;
  primary: string | null;
  topic: string | null;
  /** The latest renewal of the current primary's lease in the cluster topic; null: none for this epoch. */
  lease: { holder: string; epoch: number; ttlMs: number; renewedAt: string } | null;
  nodes: ListedNode[];
}

/** The cluster as its state topic and its nodes' reports say, each node's API probed. */
export async function listCluster(store: ClusterStore, cluster: string): Promise<ClusterListing> {
  const view = await store.read();
  const state: ClusterState | null = view.state;
  const members = state?.members ?? [];
  const nodes = await Promise.all(
    members.map(async (m): Promise<ListedNode> => {
      const report = view.reports.get(m.name);
      const status = await statusOf(`${m.apiUrl.replace(/\/$/, "")}/status`);
      return {
        name: m.name,
        apiUrl: m.apiUrl,
        role: state?.primary === m.name ? "primary" : "standby",
        reported: report
          ? {
              role: report.role,
              epoch: report.epoch,
              ready: report.ready,
              lagMs: report.lagMs,
              lastError: report.lastError,
              rejoin: report.rejoin ?? null,
              at: report.at,
            }
          : null,
        reachable: status !== null,
        lease: status === null ? null : leaseOf(status),
      };
    }),
  );
  const renewal = state ? view.leases.get(state.primary) : undefined;
  return {
    cluster,
    lease:
      renewal && renewal.epoch === state?.epoch
        ? { holder: renewal.holder, epoch: renewal.epoch, ttlMs: renewal.ttlMs, renewedAt: renewal.renewedAt }
        : null,
    epoch: state?.epoch ?? null,
    phase: state?.phase ?? null,
    primary: state?.primary ?? null,
    topic: state?.topics.data ?? null,
    nodes,
  };
}

/** The node's /status document; null when it does not answer 200 with JSON. */
async function statusOf(url: string): Promise<Record<string, unknown> | null> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
    if (!response.ok) {
      await response.body?.cancel();
      return null;
    }
    const body: unknown = await response.json();
    return typeof body === "object" && body !== null ? (body as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/** The `lease` of a node's /status, when it has one of the expected shape (an older node has none). */
function leaseOf(status: Record<string, unknown>): NodeLeaseView | null {
  const lease = status.lease as Record<string, unknown> | null | undefined;
  if (typeof lease !== "object" || lease === null) return null;
  const num = (v: unknown) => (typeof v === "number" ? v : null);
  const ttlMs = num(lease.ttlMs);
  const ageMs = num(lease.ageMs);
  if (ttlMs === null || ageMs === null) return null;
  return {
    holder: typeof lease.holder === "string" ? lease.holder : null,
    ttlMs,
    ageMs,
    heldForMs: num(lease.heldForMs),
    failoverInMs: num(lease.failoverInMs),
    election: typeof lease.election === "string" ? lease.election : null,
    electionRunning: lease.electionRunning === true,
  };
}

/** The listing as a table. */
export function renderListing(listing: ClusterListing): string {
  const lease = listing.lease
    ? `lease held by ${listing.lease.holder} (ttl ${seconds(listing.lease.ttlMs)}, renewed ${listing.lease.renewedAt})`
    : "no lease renewal for this epoch";
  const header = `cluster ${listing.cluster}: epoch ${listing.epoch ?? "-"}, phase ${listing.phase ?? "no state"}, primary ${listing.primary ?? "-"}, topic ${listing.topic ?? "-"}, ${lease}`;
  const rows = [
    ["node", "role", "reports", "epoch", "lag ms", "lease", "failover", "api", "rejoin", "last error"],
  ];
  for (const n of listing.nodes) {
    rows.push([
      n.name,
      n.role,
      n.reported ? `${n.reported.role}${n.reported.ready ? "" : " (not ready)"}` : "-",
      n.reported ? String(n.reported.epoch) : "-",
      n.reported?.lagMs === null || n.reported === null ? "-" : String(n.reported.lagMs),
      describeLease(n.lease),
      describeFailover(n.lease),
      n.reachable ? n.apiUrl : `${n.apiUrl} (unreachable)`,
      describeRejoin(n.reported?.rejoin ?? null),
      n.reported?.lastError ?? "",
    ]);
  }
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  const lines = rows.map((r) =>
    r
      .map((cell, i) => cell.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd(),
  );
  return [header, ...lines].join("\n");
}

/** One cell: the lease as this node sees it: held (and for how long) on the primary, its age elsewhere. */
function describeLease(lease: NodeLeaseView | null): string {
  if (!lease) return "-";
  if (lease.heldForMs !== null) return `held, ${seconds(lease.heldForMs)} left`;
  return `age ${seconds(lease.ageMs)} of ${seconds(lease.ttlMs)}`;
}

/** One cell: when this node would start an automatic failover. */
function describeFailover(lease: NodeLeaseView | null): string {
  if (!lease) return "-";
  if (lease.electionRunning) return "electing";
  if (lease.failoverInMs === null) return "-";
  return lease.failoverInMs === 0 ? "due" : `in ${seconds(lease.failoverInMs)}`;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** One cell: how the node's last rejoin went and how many of its transactions the new primary lacks. */
function describeRejoin(rejoin: RejoinSummary | null): string {
  if (!rejoin) return "";
  const lost =
    rejoin.unpublishedTotal === null ? "" : `, ${rejoin.unpublishedTotal} unpublished transaction(s)`;
  const how = rejoin.method ? ` (${rejoin.method})` : "";
  return `${rejoin.state}${how} at epoch ${rejoin.epoch}${lost}`;
}
