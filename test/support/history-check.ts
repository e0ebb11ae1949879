// The fault suite's checker over a whole run's history, pure: what the clients saw (every write whose COMMIT
// returned, with the node and the time), what the harness did (each fault, the primary before and after it)
// and what the cluster holds at the end. It checks:
// (a) zero-loss mode: every acknowledged write is on the final primary; async mode: every acknowledged
//     write that is missing there is listed by a rejoin report;
// (b) no split brain: after a fault, once the new primary acknowledged its first write, no other node
//     acknowledges one until the next fault;
// (c) every node ends verified equal to the primary;
// (d) the cluster ends with exactly one writable primary;
// (e) the time from each fault to the new primary's first acknowledged write.
// and reports, per kind of fault, the figures the suite prints.

export interface HistoryWrite {
  id: number;
  /** The node that acknowledged it. */
  node: string;
  /** When its COMMIT returned (ms since the epoch). */
  at: number;
}

export interface HistoryFault {
  kind: string;
  /** When it was injected (ms since the epoch). */
  at: number;
  /** The primary it hit. */
  oldPrimary: string;
  /** The primary the cluster settled on after it. */
  newPrimary: string;
}

export interface FinalNode {
  name: string;
  /** The HTTP status of its /primary (0: no answer). */
  primaryAnswer: number;
  /** Whether its database accepted a write (rolled back). */
  acceptsWrite: boolean;
  /** How it differs from the primary (`diffrelay verify`); empty when equal; the primary's own is empty. */
  differences: string[];
}

export interface FinalState {
  zeroLoss: boolean;
  primary: string;
  /** Ids of the load's table on the final primary. */
  idsOnPrimary: ReadonlySet<number>;
  /** Ids the rejoin reports list (committed on a left-behind primary, never published). */
  reportedIds: ReadonlySet<number>;
  nodes: FinalNode[];
}

export interface KindReport {
  kind: string;
  injections: number;
  /** Writes acknowledged from one of its injections to the next fault (or the end). */
  acknowledged: number;
  /** Of those, missing on the final primary. */
  missing: number;
  /** Of those missing, listed by no rejoin report. */
  unreported: number;
  splitBrain: number;
  /** Per injection: from the fault to the new primary's first acknowledged write; null if none came. */
  recoveryMs: (number | null)[];
  medianMs: number | null;
  maxMs: number | null;
}

export interface HistoryVerdict {
  problems: string[];
  kinds: KindReport[];
  /** Nodes verified equal to the primary at the end (the primary counts as equal). */
  nodesEqual: number;
  nodes: number;
  acknowledged: number;
  missing: number;
  splitBrain: number;
}

export function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

const list = (writes: HistoryWrite[], max = 10) =>
  writes
    .slice(0, max)
    .map((w) => `${w.id} (${w.node} at ${new Date(w.at).toISOString()})`)
    .join(", ") + (writes.length > max ? ` … (${writes.length} in all)` : "");

export function checkHistory(
  writes: HistoryWrite[],
  faults: HistoryFault[],
  end: FinalState,
): HistoryVerdict {
  const problems: string[] = [];
  const ordered = [...faults].sort((a, b) => a.at - b.at);
  const missing = writes.filter((w) => !end.idsOnPrimary.has(w.id));
  const unreported = missing.filter((w) => !end.reportedIds.has(w.id));

  // (a)
  if (end.zeroLoss && missing.length)
    problems.push(
      `zero-loss mode: ${missing.length} acknowledged writes are not on the final primary ${end.primary}: ${list(missing)}`,
    );
  if (!end.zeroLoss && unreported.length)
    problems.push(
      `${unreported.length} acknowledged writes are not on the final primary ${end.primary} and no rejoin report lists them: ${list(unreported)}`,
    );

  const missingIds = new Set(missing.map((w) => w.id));
  const unreportedIds = new Set(unreported.map((w) => w.id));
  const kinds = new Map<string, KindReport>();
  let splitBrainTotal = 0;
  for (const [i, fault] of ordered.entries()) {
    const until = ordered[i + 1]?.at ?? Number.POSITIVE_INFINITY;
    const during = writes.filter((w) => w.at >= fault.at && w.at < until);
    const firstNew = during
      .filter((w) => w.node === fault.newPrimary)
      .reduce<number | null>((first, w) => (first === null || w.at < first ? w.at : first), null);
    // (b) A write is acknowledged once the new primary has acknowledged: only the new primary may.
    const splitBrain =
      firstNew === null ? [] : during.filter((w) => w.at > firstNew && w.node !== fault.newPrimary);
    if (splitBrain.length)
      problems.push(
        `split brain after fault ${i + 1} (${fault.kind} of ${fault.oldPrimary}, new primary ${fault.newPrimary}, first write acknowledged by it at ${new Date(firstNew as number).toISOString()}): ${splitBrain.length} writes acknowledged by another node after that: ${list(splitBrain)}`,
      );
    splitBrainTotal += splitBrain.length;
    // (e)
    const recovery = firstNew === null ? null : firstNew - fault.at;
    if (recovery === null)
      problems.push(
        `fault ${i + 1} (${fault.kind} of ${fault.oldPrimary}): the new primary ${fault.newPrimary} acknowledged no write before the ${i + 1 < ordered.length ? "next fault" : "end"}`,
      );
    const k = kinds.get(fault.kind) ?? {
      kind: fault.kind,
      injections: 0,
      acknowledged: 0,
      missing: 0,
      unreported: 0,
      splitBrain: 0,
      recoveryMs: [],
      medianMs: null,
      maxMs: null,
    };
    k.injections++;
    k.acknowledged += during.length;
    k.missing += during.filter((w) => missingIds.has(w.id)).length;
    k.unreported += during.filter((w) => unreportedIds.has(w.id)).length;
    k.splitBrain += splitBrain.length;
    k.recoveryMs.push(recovery);
    kinds.set(fault.kind, k);
  }
  for (const k of kinds.values()) {
    const times = k.recoveryMs.filter((t): t is number => t !== null);
    k.medianMs = median(times);
    k.maxMs = times.length ? Math.max(...times) : null;
  }

  // (c)
  let nodesEqual = 0;
  for (const n of end.nodes) {
    if (n.differences.length === 0) nodesEqual++;
    else problems.push(`${n.name} is not equal to the primary ${end.primary}: ${n.differences.join("; ")}`);
  }
  // (d)
  const answering = end.nodes.filter((n) => n.primaryAnswer === 200).map((n) => n.name);
  if (answering.length !== 1 || answering[0] !== end.primary)
    problems.push(
      `exactly one writable primary (${end.primary}) expected at the end; /primary answers 200 on: ${answering.join(", ") || "none"}`,
    );
  const writable = end.nodes.filter((n) => n.acceptsWrite).map((n) => n.name);
  if (writable.length !== 1 || writable[0] !== end.primary)
    problems.push(
      `exactly one database (${end.primary}'s) should accept a write at the end; accepting: ${writable.join(", ") || "none"}`,
    );

  return {
    problems,
    kinds: [...kinds.values()],
    nodesEqual,
    nodes: end.nodes.length,
    acknowledged: writes.length,
    missing: missing.length,
    splitBrain: splitBrainTotal,
  };
}

const seconds = (ms: number | null) => (ms === null ? "-" : `${(ms / 1000).toFixed(1)} s`);

/** The suite's report, one line per kind of fault, as docs/operations.md quotes it. */
export function formatReport(mode: string, verdict: HistoryVerdict): string {
  const lines = [
    `| mode | fault | injections | acknowledged writes | missing (of them not in a rejoin report) | split-brain writes | failover time median | max |`,
    "| --- | --- | --- | --- | --- | --- | --- | --- |",
  ];
  for (const k of verdict.kinds)
    lines.push(
      `| ${mode} | ${k.kind} | ${k.injections} | ${k.acknowledged} | ${k.missing} (${k.unreported}) | ${k.splitBrain} | ${seconds(k.medianMs)} | ${seconds(k.maxMs)} |`,
    );
  lines.push(
    `${mode}: ${verdict.acknowledged} writes acknowledged in all, ${verdict.missing} missing on the final primary, ${verdict.splitBrain} split-brain writes, nodes equal at the end: ${verdict.nodesEqual} of ${verdict.nodes}; problems: ${verdict.problems.length}`,
  );
  return lines.join("\n");
}
