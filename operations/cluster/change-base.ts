import { type ClusterState, type ClusterView, FRESH_REPORT_MS } from "./cluster-state.js";

/**
 * What a new role change starts from, whatever phase the current state is in
 * (a role change that did not reach `stable` never locks the cluster):
 * - `serving`: `state`'s primary serves its topic: the state is stable, or it
 *   is a change whose new primary has reported itself writable (the command
 *   that drove it died or gave up before publishing `stable`).
 * - `halted`: a change that never promoted anyone. `base` is the epoch whose
 *   topic holds everything (the one the change left), as a stable state;
 *   `drainedEnd` is that topic's end when known for certain (published by the
 *   change, or reported by the old primary's fence: nothing can follow it),
 *   else null (the old primary never fenced and may still write).
 */
export type ChangeBase =
  | { kind: "serving"; state: ClusterState }
  | { kind: "halted"; base: ClusterState; stalled: ClusterState; drainedEnd: string | null };

export function changeBase(view: ClusterView): ChangeBase | null {
  const state = view.state;
  if (!state) return null;
  const previous = state.previous;
  if (state.phase === "stable" || previous === null) return { kind: "serving", state };
  const primary = view.reports.get(state.primary);
  if (
    primary?.epoch === state.epoch &&
    primary.role === "primary" &&
    primary.ready &&
    primary.writableAt !== null
  ) {
    return { kind: "serving", state };
  }
  const fence = view.reports.get(previous.primary);
  const fencedEnd = fence?.epoch === state.epoch ? fence.fencedEndOffset : null;
  return {
    kind: "halted",
    base: {
      ...state,
      epoch: previous.epoch,
      primary: previous.primary,
      topics: previous.topics,
      phase: "stable",
      previous: null,
    },
    stalled: state,
    drainedEnd: previous.drainedEndOffset ?? fencedEnd,
  };
}

/**
 * The epoch a failover claims: above every claim, so a claimant that died
 * between claim and publish never blocks it (a switchover claims exactly the
 * state's epoch + 1 instead, so that one in flight is a conflict).
 */
export function nextEpoch(view: ClusterView): number {
  return Math.max(view.highestClaim, view.state?.epoch ?? -1) + 1;
}

/**
 * A node holds exactly the base's topic and may take part in a change from
 * it: a ready standby of the base epoch, or a node of the stalled change that
 * drained the base topic and waits (switching at the stalled epoch).
 */
export function holdsBase(view: ClusterView, from: ChangeBase, node: string): boolean {
  const report = view.reports.get(node);
  if (!report || Date.now() - Date.parse(report.at) >= FRESH_REPORT_MS) return false;
  const base = from.kind === "serving" ? from.state : from.base;
  if (report.epoch === base.epoch && report.role === "standby" && report.ready) return true;
  return (
    from.kind === "halted" &&
    node !== from.base.primary &&
    report.epoch === from.stalled.epoch &&
    report.role === "switching"
  );
}
