/**
 * Pure comparison logic of `diffrelay verify`: which hash buckets differ, and
 * which rows differ inside them. Rows are PostgreSQL's own text of
 * `ROW(columns)`; keys are the text of `ROW(primary key columns)`, or the whole
 * row for a table without a primary key (then rows compare as multisets).
 */

export interface BucketHash {
  count: bigint;
  /** Sum of 64-bit row hashes: order-independent, so both sides may scan in any order. */
  sum: string;
}

export function differingBuckets(
  source: Map<number, BucketHash>,
  standby: Map<number, BucketHash>,
): number[] {
  const buckets = new Set([...source.keys(), ...standby.keys()]);
  return [...buckets]
    .filter((b) => {
      const s = source.get(b);
      const t = standby.get(b);
      return !s || !t || s.count !== t.count || s.sum !== t.sum;
    })
    .sort((a, b) => a - b);
}

export interface KeyedRow {
  key: string;
  row: string;
}

export interface RowDifferences {
  /** Same key on both sides, different values. */
  changed: { key: string; source: string; standby: string }[];
  /** On the source only (for PK-less tables: copies the standby lacks). */
  missing: { key: string; row: string; count: number }[];
  /** On the standby only (for PK-less tables: copies the source lacks). */
  extra: { key: string; row: string; count: number }[];
}

const byKey = (a: { key: string }, b: { key: string }) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

export function diffRows(source: KeyedRow[], standby: KeyedRow[], hasKey: boolean): RowDifferences {
  if (!hasKey) return diffMultisets(source, standby);
  const s = new Map(source.map((r) => [r.key, r.row]));
  const t = new Map(standby.map((r) => [r.key, r.row]));
  const out: RowDifferences = { changed: [], missing: [], extra: [] };
  for (const [key, row] of s) {
    const other = t.get(key);
    if (other === undefined) out.missing.push({ key, row, count: 1 });
    else if (other !== row) out.changed.push({ key, source: row, standby: other });
  }
  for (const [key, row] of t) if (!s.has(key)) out.extra.push({ key, row, count: 1 });
  out.changed.sort(byKey);
  out.missing.sort(byKey);
  out.extra.sort(byKey);
  return out;
}

function counts(rows: KeyedRow[]): Map<string, number> {
  const m = new Map<string, number>();
  for (const r of rows) m.set(r.row, (m.get(r.row) ?? 0) + 1);
  return m;
}

function diffMultisets(source: KeyedRow[], standby: KeyedRow[]): RowDifferences {
  const s = counts(source);
  const t = counts(standby);
  const out: RowDifferences = { changed: [], missing: [], extra: [] };
  for (const [row, n] of s) {
    const d = n - (t.get(row) ?? 0);
    if (d > 0) out.missing.push({ key: row, row, count: d });
  }
  for (const [row, n] of t) {
    const d = n - (s.get(row) ?? 0);
    if (d > 0) out.extra.push({ key: row, row, count: d });
  }
  out.missing.sort(byKey);
  out.extra.sort(byKey);
  return out;
}

/**
 * Where the standby stands relative to a source snapshot at consistent point C,
 * from its position (last applied commit LSN L, read in the same standby
 * snapshot as its data) and the commit LSNs of the topic's transactions after
 * its next offset, in offset order:
 * - "passed": L >= C, the standby holds a transaction the snapshot lacks;
 * - "match": L < C and the first transaction after L is at or after C, so the
 *   standby holds exactly the transactions with commit LSN < C;
 * - "behind": a transaction in (L, C) is still to be applied;
 * - "unknown": nothing after L is on the topic yet; the caller decides with
 *   the capture's confirmed position.
 */
export type Alignment = "passed" | "match" | "behind" | "unknown";

export function alignment(
  lastCommitLsn: bigint,
  consistentPoint: bigint,
  commitLsnsAfter: Iterable<bigint>,
): Alignment {
  if (lastCommitLsn >= consistentPoint) return "passed";
  for (const lsn of commitLsnsAfter) {
    // Duplicates (replays after a capture restart) of what the standby already holds.
    if (lsn <= lastCommitLsn) continue;
    return lsn >= consistentPoint ? "match" : "behind";
  }
  return "unknown";
}
