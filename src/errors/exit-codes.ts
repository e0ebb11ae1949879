/** Exit codes operators script against (also listed in docs/operations.md). */
export const EXIT = {
  ok: 0,
  failure: 1,
  /** Invalid configuration or usage: nothing was connected to. */
  config: 2,
  /** The source, standby or topic is set up in a way retrying cannot fix (wal_level, permissions, slot in use). */
  setup: 3,
  /** The standby is not, or may no longer be, a copy of the source (drift, an interrupted seed, a topic gap). */
  drift: 4,
  /** A message on the topic does not decode, or belongs to another source. */
  badFrame: 5,
  /** verify found differences. */
  different: 6,
  /** The capture cannot publish a change: a value above the hard limit, or Kafka refusing it for good. */
  unpublishable: 7,
  /** Another role change claimed the cluster's next epoch first, or the cluster moved on; nothing was changed. */
  conflict: 9,
  /**
   * failover promoted a standby, but the old primary may have committed transactions that are on no
   * standby (zero-loss mode was off or not known); the report names the last known slot lag.
   */
  possibleLoss: 8,
  /**
   * A role change began and one of its steps did not happen in time: the cluster stays mid-change
   * (the message names the epoch, the phase and what to do, e.g. failover when the old primary is gone).
   */
  stalled: 10,
  /**
   * A capture, applier or node told to stop (SIGTERM, SIGINT) did not finish stopping within
   * `stopTimeoutMs`, or got a second signal: it exited without waiting, as a kill -9 would.
   */
  stopTimedOut: 11,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];
