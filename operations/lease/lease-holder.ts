import { randomUUID } from "node:crypto";
import { ConfigError } from "../../src/config/config-error.js";
import type { Logger } from "../../src/observability/logger.js";
import type { ClusterView, LeaseRecord } from "../cluster/index.js";
import type { MonotonicClock } from "./lease-observer.js";

/**
 * The share of the TTL a holder counts on after sending a renewal. The
 * standbys count the whole TTL from the renewal's arrival, which is later;
 * the rest is the margin for fencing the database and for clock-rate drift.
 */
export const HOLDER_SHARE = 0.7;

export interface LeaseTimings {
  /** The standbys elect when they have seen no renewal for this long. */
  ttlMs: number;
  renewMs: number;
}

export interface LeaseHolderOptions {
  me: string;
  epoch: number;
  timings: LeaseTimings;
  clock: MonotonicClock;
  publish: (lease: LeaseRecord) => Promise<void>;
  logger: Logger;
  /** Each time the lease is extended: how long it is valid from now. */
  onExtended: (validForMs: number) => void;
  /** Why the holder must not renew now (its database server does not answer); null when it may. */
  withholdRenewal: () => string | null;
}

/**
 * The primary's side of the lease: renews it every `renewMs` through the
 * cluster topic and knows, by its own monotonic clock, until when it holds it.
 *
 * A renewal counts only once it has been read back from the cluster topic in
 * a view whose state still names this node the primary of its epoch (or asks
 * it to hand over): the topic has one partition, so everything before the
 * renewal was read too, and a failover's `halting` state written before it is
 * seen and the renewal not counted. A renewal written after a failover's
 * state cannot extend anything either: the failover waits out the renewals it
 * read before its own state (see waitForLapse), and the holder sees that state
 * before any later renewal of its own.
 */
export class LeaseHolder {
  private readonly incarnation = randomUUID();
  private seq = 0;
  /** Renewals sent and not read back yet: seq → when sent. */
  private readonly pending = new Map<number, number>();
  private validUntil = Number.NEGATIVE_INFINITY;
  /** Why renewals are withheld now, null while they go out. */
  private withheld: string | null = null;
  private timer: NodeJS.Timeout | null = null;
  private extended: (() => void)[] = [];

  constructor(private readonly options: LeaseHolderOptions) {}

  start(): void {
    if (this.timer) return;
    void this.renew();
    this.timer = setInterval(() => void this.renew(), this.options.timings.renewMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    this.pending.clear();
  }

  /** Whether the lease is held at this instant. */
  holds(): boolean {
    return this.options.clock() < this.validUntil;
  }

  /** Milliseconds the lease is still held for (negative: lapsed that long ago; -Infinity: never held). */
  remainingMs(): number {
    return this.validUntil - this.options.clock();
  }

  /** Resolves at the next extension of the lease. */
  nextExtension(): Promise<void> {
    return new Promise((resolve) => this.extended.push(resolve));
  }

  /** Takes in a view of the cluster topic; call it with every view, in the order read. */
  observe(view: ClusterView): void {
    const { me, epoch } = this.options;
    const state = view.state;
    const mine = view.leases.get(me);
    if (!state || !mine || mine.incarnation !== this.incarnation) return;
    const serving = state.epoch === epoch && state.primary === me && view.highestStateEpoch <= epoch;
    const handingOver =
      state.phase === "fencing" && state.previous?.epoch === epoch && state.previous.primary === me;
    if (!serving && !handingOver) {
      // Superseded: none of the renewals read back with this state counts, and it renews no more; the node fences.
      this.stop();
      return;
    }
    let sentAt: number | undefined;
    for (const [seq, at] of this.pending) {
      if (seq > mine.seq) continue;
      sentAt = Math.max(sentAt ?? at, at);
      this.pending.delete(seq);
    }
    if (sentAt === undefined) return;
    const until = sentAt + this.options.timings.ttlMs * HOLDER_SHARE;
    if (until <= this.validUntil) return;
    this.validUntil = until;
    this.options.onExtended(this.remainingMs());
    const waiting = this.extended;
    this.extended = [];
    for (const resolve of waiting) resolve();
  }

  private async renew(): Promise<void> {
    const { me, epoch, timings, clock, publish, logger } = this.options;
    const withheld = this.options.withholdRenewal();
    if (withheld !== null) {
      if (this.withheld === null)
        logger.error(
          { epoch, remainingMs: Math.round(this.remainingMs()) },
          `the primary's lease is no longer renewed: ${withheld}; it lapses, its node fences what it can and the standbys elect another primary`,
        );
      this.withheld = withheld;
      return;
    }
    if (this.withheld !== null) logger.warn({ epoch }, "the primary's lease is renewed again");
    this.withheld = null;
    const seq = ++this.seq;
    this.pending.set(seq, clock());
    try {
      await publish({
        holder: me,
        epoch,
        incarnation: this.incarnation,
        seq,
        ttlMs: timings.ttlMs,
        renewedAt: new Date().toISOString(),
      });
    } catch (err) {
      // Counted only when read back; one that did land and is read back later is not counted (the safe side).
      this.pending.delete(seq);
      logger.warn(
        { err, epoch, remainingMs: Math.round(this.remainingMs()) },
        "could not renew the primary's lease through the cluster topic",
      );
    }
  }
}

export const DEFAULT_LEASE_TTL_MS = 5000;
const DEFAULT_LEASE_RENEW_MS = 1000;

/** The lease timings a node's settings give, checked: at least three renewals fit in the share the holder counts on. */
export function leaseTimingsOf(
  node: { leaseTtlMs?: number; leaseRenewMs?: number } | undefined,
): LeaseTimings {
  const ttlMs = node?.leaseTtlMs ?? DEFAULT_LEASE_TTL_MS;
  const renewMs = node?.leaseRenewMs ?? Math.min(DEFAULT_LEASE_RENEW_MS, Math.floor(ttlMs / 5));
  if (renewMs * 3 > ttlMs * HOLDER_SHARE) {
    throw new ConfigError(
      `config: --lease-renew-ms ${renewMs} is too long for --lease-ttl-ms ${ttlMs}: the primary holds its lease for ${ttlMs * HOLDER_SHARE} ms after a renewal, which must fit three renewals (at most ${Math.floor((ttlMs * HOLDER_SHARE) / 3)} ms)`,
    );
  }
  return { ttlMs, renewMs };
}
