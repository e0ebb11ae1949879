import type { ClusterView } from "../cluster/index.js";

/** Milliseconds on a monotonic clock (performance.now()): leases are never judged by wall clocks. */
export type MonotonicClock = () => number;

export const monotonicClock: MonotonicClock = () => performance.now();

/**
 * What a reader of the cluster topic has seen of the leases: when, on its own
 * monotonic clock, each holder's latest renewal first reached it, and when
 * the cluster last showed progress. A renewal counts from its arrival here,
 * which is never before it was sent, so a holder that counts its lease from
 * the moment it sent the renewal always sees it end first.
 */
export class LeaseObserver {
  private readonly startedAt: number;
  private readonly renewals = new Map<
    string,
    { token: string; epoch: number; seenAt: number; ttlMs: number }
  >();
  private progress: { mark: string; seenAt: number } | null = null;

  constructor(
    private readonly clock: MonotonicClock,
    /** The TTL assumed for a holder whose renewal was never seen. */
    private readonly defaultTtlMs: number,
  ) {
    this.startedAt = clock();
  }

  /** Takes in a view; call it with every view, in the order read. */
  observe(view: ClusterView): void {
    const now = this.clock();
    for (const lease of view.leases.values()) {
      const token = `${lease.epoch}/${lease.incarnation}/${lease.seq}`;
      if (this.renewals.get(lease.holder)?.token !== token)
        this.renewals.set(lease.holder, { token, epoch: lease.epoch, seenAt: now, ttlMs: lease.ttlMs });
    }
    const mark = progressMark(view);
    if (this.progress?.mark !== mark) this.progress = { mark, seenAt: now };
  }

  /**
   * When `holder`'s lease of `epoch` lapses unless a later renewal arrives:
   * its latest renewal's arrival plus its TTL. A holder never seen renewing is
   * counted from when this observer started (a renewal it wrote before that
   * arrives no earlier than then).
   */
  lapsesAt(holder: string, epoch: number): number {
    const seen = this.renewals.get(holder);
    if (seen && seen.epoch === epoch) return Math.max(seen.seenAt, this.startedAt) + seen.ttlMs;
    return this.startedAt + (seen?.ttlMs ?? this.defaultTtlMs);
  }

  /** The TTL `holder` renews with (the default when never seen). */
  ttlOf(holder: string): number {
    return this.renewals.get(holder)?.ttlMs ?? this.defaultTtlMs;
  }

  /** How long the cluster has shown no progress (see progressMark). */
  silentMs(): number {
    return this.clock() - (this.progress?.seenAt ?? this.startedAt);
  }

  now(): number {
    return this.clock();
  }
}

/**
 * What counts as the cluster showing life: the current state (epoch, primary,
 * phase) and its primary's latest renewal; during a role change also the
 * reports of its new primary, which renews no lease until it serves but
 * reports as it drains.
 */
function progressMark(view: ClusterView): string {
  const state = view.state;
  if (!state) return "none";
  const lease = view.leases.get(state.primary);
  const renewal = lease?.epoch === state.epoch ? `${lease.incarnation}/${lease.seq}` : "-";
  const changing = state.phase === "stable" ? "" : `|${view.reports.get(state.primary)?.at ?? "-"}`;
  return `${state.epoch}/${state.primary}/${state.phase}|${renewal}${changing}`;
}
