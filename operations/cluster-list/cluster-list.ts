import type { ClusterState, ClusterStore, NodeReport, RejoinSummary } from "../cluster/index.js";

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
}

export interface ClusterListing {
  cluster: string;
  epoch: number | null;
  phase: string | null;
  primary: string | null;
  topic: string | null;
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
        reachable: await answers(`${m.apiUrl.replace(/\/$/, "")}/status`),
      };
    }),
  );
  return {
    cluster,
    epoch: state?.epoch ?? null,
    phase: state?.phase ?? null,
    primary: state?.primary ?? null,
    topic: state?.topics.data ?? null,
    nodes,
  };
}

async function answers(url: string): Promise<boolean> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(2000) });
    return response.ok;
  } catch {
    return false;
  }
}

/** The listing as a table. */
export function renderListing(listing: ClusterListing): string {
  const header = `cluster ${listing.cluster}: epoch ${listing.epoch ?? "-"}, phase ${listing.phase ?? "no state"}, primary ${listing.primary ?? "-"}, topic ${listing.topic ?? "-"}`;
  const rows = [["node", "role", "reports", "epoch", "lag ms", "api", "rejoin", "last error"]];
  for (const n of listing.nodes) {
    rows.push([
      n.name,
      n.role,
      n.reported ? `${n.reported.role}${n.reported.ready ? "" : " (not ready)"}` : "-",
      n.reported ? String(n.reported.epoch) : "-",
      n.reported?.lagMs === null || n.reported === null ? "-" : String(n.reported.lagMs),
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

/** One cell: how the node's last rejoin went and how many of its transactions the new primary lacks. */
function describeRejoin(rejoin: RejoinSummary | null): string {
  if (!rejoin) return "";
  const lost =
    rejoin.unpublishedTotal === null ? "" : `, ${rejoin.unpublishedTotal} unpublished transaction(s)`;
  const how = rejoin.method ? ` (${rejoin.method})` : "";
  return `${rejoin.state}${how} at epoch ${rejoin.epoch}${lost}`;
}
