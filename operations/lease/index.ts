/**
 * The primary's lease and automatic failover, with no consensus of
 * diffrelay's own: the lease lives in the cluster topic (key `lease/<node>`),
 * and the atomic step stays the epoch claim (operations/cluster).
 *
 * Contract
 * - The primary's node renews every `renewMs`. A renewal counts once it is
 *   read back from the topic in a view whose state still names it the primary
 *   (LeaseHolder); it then holds the lease until HOLDER_SHARE of the TTL after
 *   it *sent* that renewal, by its own monotonic clock. Past that it confirms
 *   nothing to its database (zero-loss commits stay waiting) and fences its
 *   database before the standbys' TTL can lapse; a watchdog process fences it
 *   should the node die or freeze (FenceWatchdog). Its node withholds the
 *   renewals while its database server has not answered for a TTL: a server
 *   that died under a living node lets the standbys elect too.
 * - A standby counts a renewal from when it *arrived*, on its own monotonic
 *   clock (LeaseObserver); with no renewal for the TTL the lease has lapsed,
 *   and the ranked candidates start a failover to themselves (decideElection),
 *   one TTL apart.
 * - A failover that finds the old primary unfenced publishes `halting`, reads
 *   the topic through it and waits until the old primary's latest renewal
 *   before it is a TTL old (waitForLapse) before it takes the old topic's end:
 *   by then the old primary has fenced itself or lost the right to confirm.
 */
export { decideElection, type ElectionDecision, type ElectionInputs } from "./election.js";
export { FenceWatchdog } from "./fence-watchdog.js";
export { followLeases, type LeaseSight, waitForLapse } from "./lapse-wait.js";
export {
  DEFAULT_LEASE_TTL_MS,
  HOLDER_SHARE,
  LeaseHolder,
  type LeaseTimings,
  leaseTimingsOf,
} from "./lease-holder.js";
export { LeaseObserver, type MonotonicClock, monotonicClock } from "./lease-observer.js";
