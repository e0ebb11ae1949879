import type { ClusterMember } from "../../operations/cluster/index.js";
import { ConfigError } from "../../src/config/config-error.js";

/** name=url entries (the schema checked their form) as members. */
export function parseMembers(entries: readonly string[]): ClusterMember[] {
  return entries.map((entry) => {
    const at = entry.indexOf("=");
    return { name: entry.slice(0, at), apiUrl: entry.slice(at + 1) };
  });
}

/** The cluster name, required by every cluster command. */
export function requireClusterName(cluster: { name: string } | undefined): string {
  if (!cluster?.name)
    throw new ConfigError("config: cluster.name is required (--cluster or DIFFRELAY_CLUSTER)");
  return cluster.name;
}
