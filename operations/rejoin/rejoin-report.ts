/**
 * What rejoin tells: the old primary's transactions that never reached the
 * new primary, and how the old primary was made an exact standby of it.
 * Values are PostgreSQL's text forms; LSNs are in PostgreSQL's X/Y form.
 */

export interface UnpublishedChange {
  op: "insert" | "update" | "delete";
  table: string;
  /** Primary key column → value (the whole row for a table without one); for an update, the old key. */
  key: Record<string, string | null>;
  /** An update that changed the key: the new one. */
  newKey?: Record<string, string | null>;
}

export interface UnpublishedTransaction {
  commitLsn: string;
  commitTime: string;
  xid: number;
  /** It is in the old topic (published after promote drained it, so not on the new primary). */
  reachedOldTopic: boolean;
  changes: UnpublishedChange[];
  /** Tables it truncated. */
  truncated: string[];
  /** Schema changes it made (captured DDL). */
  ddl: string[];
}

export interface RejoinReport {
  standbyName: string;
  oldTopic: string;
  newTopic: string;
  epoch: number;
  /** The last of the old primary's transactions that the new primary holds. */
  newPrimaryHoldsLsn: string;
  unpublished: UnpublishedTransaction[];
  /**
   * rewind: the unpublished transactions were undone from the old rows the
   * WAL holds, and the old primary follows the new topic from its start;
   * reseed: a full copy from the new primary (reasons say why);
   * already-rejoined: a previous run repaired it (its report is returned).
   */
  method: "rewind" | "reseed" | "already-rejoined";
  reseedReasons: string[];
  /** Row changes undone (rewind). */
  rowsRewound: number;
  /** Tables copied whole from the new primary (reseed); a rewind copies no row. */
  tablesReseeded: string[];
  /** The old capture's slot, dropped: it held WAL back. */
  droppedSlot: string | null;
  /** Its id in diffrelay.rejoin_report on the old primary. */
  reportId: string;
  /**
   * Epochs between the old one and the new one (the old primary was down
   * across several role changes), each topic applied to its drained end after
   * the rewind; absent or empty when the new epoch took over from the old one.
   */
  followed?: { topic: string; epoch: number; endOffset: string }[];
}

/** One line per transaction, then the outcome: for the log and the command's output. */
export function renderRejoinReport(report: RejoinReport): string {
  const lines = [
    `the new primary holds the old primary's transactions up to commit LSN ${report.newPrimaryHoldsLsn}; ` +
      `${report.unpublished.length} committed on the old primary never reached it`,
  ];
  for (const t of report.unpublished) {
    lines.push(
      `  commit ${t.commitLsn} (xid ${t.xid}, ${t.commitTime}${t.reachedOldTopic ? ", in the old topic after the drain" : ""})`,
    );
    for (const c of t.changes) {
      const newKey = c.newKey ? ` → ${JSON.stringify(c.newKey)}` : "";
      lines.push(`    ${c.op} ${c.table} ${JSON.stringify(c.key)}${newKey}`);
    }
    for (const table of t.truncated) lines.push(`    truncate ${table}`);
    for (const ddl of t.ddl) lines.push(`    ddl ${ddl}`);
  }
  if (report.method === "rewind") {
    const between = (report.followed ?? []).map(
      (f) => `${f.topic} (epoch ${f.epoch}) to offset ${f.endOffset}, `,
    );
    lines.push(
      `rewound ${report.rowsRewound} row change(s); ${between.length > 0 ? `applied ${between.join("")}then ` : ""}follows ${report.newTopic} (epoch ${report.epoch}) from its start`,
    );
  } else if (report.method === "reseed") {
    lines.push(`RE-SEEDED from the new primary (${report.tablesReseeded.join(", ")}) because:`);
    for (const reason of report.reseedReasons) lines.push(`  - ${reason}`);
  } else {
    lines.push(`already rejoined onto ${report.newTopic} by an earlier run (report ${report.reportId})`);
  }
  if (report.droppedSlot) lines.push(`dropped the old capture's slot ${report.droppedSlot}`);
  return lines.join("\n");
}
