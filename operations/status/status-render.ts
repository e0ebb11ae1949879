import type { StatusReport } from "./status-collector.js";

const dash = (v: unknown) => (v === null || v === undefined ? "-" : String(v));

function seconds(v: number | null): string {
  if (v === null) return "-";
  if (v < 60) return `${v.toFixed(1)} s`;
  if (v < 3600) return `${(v / 60).toFixed(1)} min`;
  return `${(v / 3600).toFixed(1)} h`;
}

/** One line per node given with --node-urls: what its /status says, or why it could not be read. */
function renderNodes(report: StatusReport): string[] {
  const header = ["node", "role", "epoch", "cluster", "writable", "lag", "last error"];
  const rows = report.nodes.map((n) =>
    n.error
      ? [n.node ?? n.url, "-", "-", "-", "-", "-", `(${n.error})`]
      : [
          dash(n.node),
          n.fenced ? `${dash(n.nodeRole)} (${n.fenced})` : dash(n.nodeRole),
          dash(n.epoch),
          `epoch ${dash(n.clusterEpoch)}, primary ${dash(n.clusterPrimary)}, ${dash(n.phase)}`,
          n.writable === null ? "-" : n.writable ? "yes" : "no",
          n.lagMs === null ? "-" : seconds(n.lagMs / 1000),
          dash(n.lastError),
        ],
  );
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const fmt = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  return [fmt(header), ...rows.map(fmt)];
}

/** The table `diffrelay status` prints (and redraws with --watch). */
export function renderStatus(report: StatusReport): string {
  // Nodes only (`status --node-urls` without a source, standbys or topic): their lines are all there is.
  if (report.topic === "-" && report.nodes.length) {
    return [`diffrelay status at ${report.time}`, "", ...renderNodes(report)].join("\n");
  }
  const s = report.source;
  const lines = [
    `diffrelay status at ${report.time}   topic ${report.topic}`,
    "",
    `source  slot ${s.slot}: ${s.slotExists === null ? "-" : s.slotExists ? (s.slotActive ? "active" : "inactive") : "MISSING"}` +
      `, confirmed ${dash(s.confirmedFlushLsn)}, lag ${s.slotLagBytes === null ? "-" : `${s.slotLagBytes} bytes`}` +
      `, topic end offset ${dash(s.topicEndOffset)}, last error ${dash(s.lastError)}`,
  ];
  if (s.error) lines.push(`        problem: ${s.error}`);
  if (s.stalled) lines.push(`        STALLED: ${s.stalled}`);
  lines.push("");
  const header = [
    "standby",
    "next offset",
    "offset lag",
    "time lag",
    "last commit lsn",
    "last commit time",
    "last error",
  ];
  const rows = report.standbys.map((b) =>
    b.error
      ? [b.name, "-", "-", "-", "-", "-", `${dash(b.lastError)} (${b.error})`]
      : [
          b.name,
          dash(b.nextOffset),
          dash(b.offsetLag),
          seconds(b.timeLagSeconds),
          dash(b.lastCommitLsn),
          dash(b.lastCommitTime),
          dash(b.lastError),
        ],
  );
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const fmt = (r: string[]) =>
    r
      .map((c, i) => c.padEnd(widths[i] ?? 0))
      .join("  ")
      .trimEnd();
  lines.push(fmt(header));
  for (const r of rows) lines.push(fmt(r));
  for (const b of report.standbys) if (b.stalled) lines.push(`${b.name} STALLED: ${b.stalled}`);
  for (const b of report.standbys) {
    if (!b.rejoined) continue;
    const lost = b.rejoined.lostCommitLsns;
    lines.push(
      `${b.name} rejoined as a former primary (${b.rejoined.method}, diffrelay.rejoin_report id ${b.rejoined.reportId}): ` +
        `${lost.length} of its transactions never reached the new primary${lost.length ? ` (commit LSNs ${lost.join(", ")})` : ""}`,
    );
  }
  if (rows.length === 0) lines.push("(no standby given: --standby-url, or --standbys name=url,...)");
  if (report.nodes.length) lines.push("", ...renderNodes(report));
  return lines.join("\n");
}
