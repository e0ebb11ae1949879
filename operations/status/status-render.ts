import type { StatusReport } from "./status-collector.js";

const dash = (v: unknown) => (v === null || v === undefined ? "-" : String(v));

function seconds(v: number | null): string {
  if (v === null) return "-";
  if (v < 60) return `${v.toFixed(1)} s`;
  if (v < 3600) return `${(v / 60).toFixed(1)} min`;
  return `${(v / 3600).toFixed(1)} h`;
}

/** The table `diffrelay status` prints (and redraws with --watch). */
export function renderStatus(report: StatusReport): string {
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
  return lines.join("\n");
}
