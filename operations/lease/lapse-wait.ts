import type { ClusterStore, ClusterView } from "../cluster/index.js";
import { LeaseObserver, monotonicClock } from "./lease-observer.js";

/** A reader's sight of the leases: what it observed, and its latest view of the cluster topic. */
export interface LeaseSight {
  observer: LeaseObserver;
  view(): ClusterView | null;
}

const POLL_MS = 50;

/**
 * Resolves once `holder`'s lease of `epoch` has certainly lapsed: the view has
 * been read through the state of epoch `through` (the failover's own), so
 * every renewal written before it was seen, and the holder's TTL has passed on
 * this clock since the latest of them arrived. A renewal written after that
 * state extends nothing: the holder reads the state before it and fences.
 * Returns how long it waited.
 */
export async function waitForLapse(
  sight: LeaseSight,
  holder: string,
  epoch: number,
  through: number,
): Promise<number> {
  const started = sight.observer.now();
  // Fixed by the first view read through that state: a renewal that arrives later was written after it, and
  // counts for nothing (its holder reads the state first); a holder that goes on publishing, cut off from the
  // topic's readers or thawed, must not hold the failover back.
  let lapsesAt: number | null = null;
  for (;;) {
    const state = sight.view()?.state;
    if (lapsesAt === null && state && state.epoch >= through)
      lapsesAt = sight.observer.lapsesAt(holder, epoch);
    if (lapsesAt !== null && sight.observer.now() >= lapsesAt)
      return Math.round(sight.observer.now() - started);
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

/** A sight of its own, for a command: renewals already in the topic count from when it starts reading. */
export async function followLeases(
  store: ClusterStore,
  defaultTtlMs: number,
): Promise<LeaseSight & { stop(): Promise<void> }> {
  const observer = new LeaseObserver(monotonicClock, defaultTtlMs);
  let latest: ClusterView | null = null;
  const follower = await store.follow((view) => {
    latest = view;
    observer.observe(view);
  });
  return { observer, view: () => latest, stop: () => follower.stop() };
}
