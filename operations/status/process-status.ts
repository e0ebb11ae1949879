/**
 * The /status documents `diffrelay status` reads: a standalone capture's or applier's, or a `diffrelay node`'s,
 * which carries its role in the cluster and, inside `service`, the report of the capture or applier it runs.
 */

export type StatusDocument = Record<string, unknown>;

/** One node of an HA cluster, as its /status describes it. */
export interface NodeStatus {
  /** The /status URL that was read. */
  url: string;
  node: string | null;
  /** primary, standby, fenced, ... (null: it did not answer). */
  nodeRole: string | null;
  epoch: number | null;
  clusterEpoch: number | null;
  clusterPrimary: string | null;
  phase: string | null;
  writable: boolean | null;
  lagMs: number | null;
  /** Why it is fenced, when it is. */
  fenced: string | null;
  lastError: string | null;
  /** Why its /status could not be read. */
  error: string | null;
}

/**
 * A process's /status URL from what the user gave: a node's API address (`http://host:9464`, its
 * --metrics-port) or the /status URL itself.
 */
export function statusUrl(given: string): string {
  const url = new URL(given);
  if (url.pathname === "/" || url.pathname === "") url.pathname = "/status";
  return url.toString();
}

export async function fetchStatus(
  url: string,
): Promise<{ doc: StatusDocument | null; error: string | null }> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(3000) });
    if (!res.ok) return { doc: null, error: `${url} answered ${res.status}` };
    return { doc: (await res.json()) as StatusDocument, error: null };
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).name;
    return { doc: null, error: `${url} did not answer (${cause})` };
  }
}

const isNode = (doc: StatusDocument | null): boolean => doc?.role === "node";

/** The capture's or applier's report in a document: a node's `service`, or the document itself. */
export function serviceReport(doc: StatusDocument | null): StatusDocument | null {
  if (!isNode(doc)) return doc;
  const service = doc?.service;
  return service && typeof service === "object" ? (service as StatusDocument) : null;
}

const text = (v: unknown) => (typeof v === "string" ? v : null);
const num = (v: unknown) => (typeof v === "number" ? v : null);

export function nodeStatus(
  url: string,
  fetched: { doc: StatusDocument | null; error: string | null },
): NodeStatus {
  const d = fetched.doc;
  const error =
    fetched.error ??
    (d && !isNode(d) ? `${url} is not a diffrelay node's /status (role ${String(d.role)})` : null);
  const node = d && isNode(d) ? d : null;
  return {
    url,
    node: text(node?.node),
    nodeRole: text(node?.nodeRole),
    epoch: num(node?.epoch),
    clusterEpoch: num(node?.clusterEpoch),
    clusterPrimary: text(node?.clusterPrimary),
    phase: text(node?.phase),
    writable: typeof node?.writable === "boolean" ? node.writable : null,
    lagMs: num(node?.lagMs),
    fenced: text(node?.fenced),
    lastError: text(node?.lastError),
    error,
  };
}
