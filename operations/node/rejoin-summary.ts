import type { RejoinSummary } from "../cluster/index.js";
import type { RejoinReport } from "../rejoin/index.js";

/**
 * A rejoin report as /status and the cluster topic carry it: every
 * unpublished transaction's commit LSN and xid, and their changes (table and
 * key) up to `maxChanges` in all, so one node report stays a small Kafka
 * record however much was lost. What is left out is counted; the whole list
 * is in diffrelay.rejoin_report (`reportId`) and in the log.
 */
export function summarizeRejoin(report: RejoinReport, maxChanges: number, at: string): RejoinSummary {
  let room = maxChanges;
  const listed = report.unpublished.slice(0, maxChanges).map((t) => {
    const changes = t.changes.slice(0, Math.max(0, room));
    room -= changes.length;
    return {
      commitLsn: t.commitLsn,
      xid: t.xid,
      commitTime: t.commitTime,
      changes,
      changesLeftOut: t.changes.length - changes.length,
      truncated: t.truncated,
      ddl: t.ddl,
    };
  });
  return {
    state: "rejoined",
    epoch: report.epoch,
    method: report.method,
    reseedReasons: report.reseedReasons,
    unpublishedTotal: report.unpublished.length,
    unpublished: listed,
    transactionsLeftOut: report.unpublished.length - listed.length,
    reportId: report.reportId,
    error: null,
    at,
  };
}
