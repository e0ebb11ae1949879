// What every fault test proves at its end: each standby equals the primary (diffrelay verify exits 0, the
// tables compare row for row), the PK-less load table holds exactly the transactions the load committed
// (none missing, none doubled), and a tally of the faults injected, for the suite's report.
import type { ReplicationPipeline } from "./replication-pipeline.js";
import { runSql } from "./services.js";
import { compareTables, describeDifferences } from "./table-compare.js";
import { WRITE_LOAD_TABLES, type WriteLoadResult } from "./write-load.js";

export interface StandbyCheck {
  standby: string;
  rowsCompared: number;
  mismatches: number;
  verifyExit: number | null;
  transactions: number;
}

/**
 * Row-for-row and transaction-for-transaction: `problems` lists everything that differs, empty when the
 * standby is an exact copy. Call after the load stopped and the pipeline caught up.
 */
export async function checkStandby(
  pipeline: ReplicationPipeline,
  standbyName: string,
  load: WriteLoadResult,
  urls: { source: string; standby: string },
): Promise<StandbyCheck & { problems: string[] }> {
  const problems: string[] = [];
  const comparison = await compareTables(urls.source, urls.standby, WRITE_LOAD_TABLES);
  problems.push(...describeDifferences(comparison));
  const { rows } = await runSql<{ events: string; txs: string; doubled: string }>(
    urls.standby,
    `SELECT (SELECT count(*) FROM load_events)::text AS events,
            (SELECT count(DISTINCT (writer, tx)) FROM load_events)::text AS txs,
            (SELECT count(*) - count(DISTINCT (writer, tx, n)) FROM load_events)::text AS doubled`,
  );
  const counts = rows[0] ?? { events: "?", txs: "?", doubled: "?" };
  const transactions = load.committed + load.ambiguousCommitted;
  if (counts.events !== String(load.expectedRows)) {
    problems.push(
      `${standbyName}: load_events has ${counts.events} rows, the source committed ${load.expectedRows}`,
    );
  }
  if (counts.txs !== String(transactions)) {
    problems.push(
      `${standbyName}: load_events holds ${counts.txs} transactions, the source committed ${transactions}`,
    );
  }
  if (counts.doubled !== "0")
    problems.push(`${standbyName}: ${counts.doubled} load_events rows applied twice`);
  const verify = await pipeline.verify(standbyName, {
    sourceUrl: urls.source,
    standbyUrl: urls.standby,
    extraArgs: ["--attempt-timeout-seconds", "60"],
  });
  if (verify.code !== 0 || verify.report?.equal !== true) {
    problems.push(`${standbyName}: diffrelay verify exited ${verify.code}:\n${verify.output.slice(-3000)}`);
  }
  const rowsCompared = comparison.reduce((n, c) => n + c.sourceRows, 0);
  const mismatches = comparison.reduce(
    (n, c) =>
      n + c.onlyOnSource.reduce((m, r) => m + r.count, 0) + c.onlyOnStandby.reduce((m, r) => m + r.count, 0),
    0,
  );
  return {
    standby: standbyName,
    rowsCompared,
    mismatches,
    verifyExit: verify.code,
    transactions: Number(counts.txs),
    problems,
  };
}

/** Faults injected in one test file, by kind; printed as one JSON line for the suite's report. */
export class FaultTally {
  readonly counts: Record<string, number> = {};
  readonly notes: string[] = [];

  add(kind: string, n = 1): void {
    this.counts[kind] = (this.counts[kind] ?? 0) + n;
  }

  total(): number {
    return Object.values(this.counts).reduce((a, b) => a + b, 0);
  }

  report(file: string, load: WriteLoadResult | undefined, checks: StandbyCheck[], startedAt: number): string {
    return `fault report ${JSON.stringify({
      file,
      faults: this.counts,
      load,
      standbys: checks,
      seconds: Math.round((Date.now() - startedAt) / 100) / 10,
      notes: this.notes,
    })}`;
  }
}
