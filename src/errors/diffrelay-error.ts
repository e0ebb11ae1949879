/**
 * What an error means for the process that meets it. Every diffrelay error
 * names its kind; errorPolicy() (error-policy.ts) turns the kind into
 * retry-or-stop and an exit code, in one place, for every connector and command.
 */
export type ErrorKind =
  /** A reconnect may cure it (a server restarted, a connection dropped): retry with backoff. */
  | "transient"
  /** Invalid settings or usage, found before anything connected. */
  | "configuration"
  /** A server is set up in a way that retrying cannot fix (wal_level, privileges, slot in use, a refused operation). */
  | "setup"
  /** The standby is not a copy of the source: a row or a table definition differs, or the standby refused a change. */
  | "drift"
  /** A seed of the standby started and never finished: its tables are partly copied. */
  | "seed-interrupted"
  /** The standby's next message is no longer in the topic (retention, deleted records, a recreated topic). */
  | "topic-gap"
  /** A message (on the topic, or from the source's replication stream) does not decode or is not ours. */
  | "bad-frame"
  /** Another role change of the cluster claimed the epoch first, or the cluster moved on: nothing was changed. */
  | "conflict"
  /** An operation could not reach a result this time (verify found no comparable point); running it again may. */
  | "incomplete"
  /**
   * The capture cannot publish a change, and sending it again cannot help: a value above the hard
   * limit, or Kafka refusing the produce for good (MESSAGE_TOO_LARGE, INVALID_RECORD, ...).
   */
  | "unpublishable"
  /** A role change of the cluster began and a step of it did not happen in time: the cluster is mid-change. */
  | "stalled";

/** Every kind, e.g. to give a metric's `kind` label a series per kind from the start. */
export const ERROR_KINDS: readonly ErrorKind[] = [
  "transient",
  "configuration",
  "setup",
  "drift",
  "seed-interrupted",
  "topic-gap",
  "bad-frame",
  "conflict",
  "incomplete",
  "unpublishable",
  "stalled",
];

export class DiffrelayError extends Error {
  constructor(
    readonly kind: ErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
