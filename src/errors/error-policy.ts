import { DiffrelayError, type ErrorKind } from "./diffrelay-error.js";
import { EXIT, type ExitCode } from "./exit-codes.js";

export interface ErrorPolicy {
  kind: ErrorKind;
  /** Whether a long-running process retries (reconnects from its durable position) or stops. */
  retry: boolean;
  /** The exit code a process or command that stops on this error exits with. */
  exitCode: ExitCode;
}

const POLICIES: Record<ErrorKind, Omit<ErrorPolicy, "kind">> = {
  transient: { retry: true, exitCode: EXIT.failure },
  configuration: { retry: false, exitCode: EXIT.config },
  setup: { retry: false, exitCode: EXIT.setup },
  drift: { retry: false, exitCode: EXIT.drift },
  "seed-interrupted": { retry: false, exitCode: EXIT.drift },
  "topic-gap": { retry: false, exitCode: EXIT.drift },
  "bad-frame": { retry: false, exitCode: EXIT.badFrame },
  conflict: { retry: false, exitCode: EXIT.conflict },
  incomplete: { retry: false, exitCode: EXIT.failure },
  unpublishable: { retry: false, exitCode: EXIT.unpublishable },
  stalled: { retry: false, exitCode: EXIT.stalled },
};

/**
 * Kafka refusals a fresh producer cures (a new session starts a new producer id and sequence),
 * although the client calls them not retriable.
 */
const CURED_BY_A_NEW_PRODUCER = new Set([
  "OUT_OF_ORDER_SEQUENCE_NUMBER",
  "DUPLICATE_SEQUENCE_NUMBER",
  "INVALID_PRODUCER_EPOCH",
  "UNKNOWN_PRODUCER_ID",
  "INVALID_PRODUCER_ID_MAPPING",
  "PRODUCER_FENCED",
]);

/**
 * What a failed produce means. kafkajs marks the broker's answers it will not
 * retry (`retriable: false`): sending the same records again gets the same
 * answer, so retrying from the slot would loop while the slot pins WAL.
 * Authorization refusals are set-up problems; the others (MESSAGE_TOO_LARGE,
 * RECORD_LIST_TOO_LARGE, INVALID_RECORD, ...) make the change unpublishable.
 */
export function produceErrorKind(cause: unknown): ErrorKind {
  for (let err = cause, depth = 0; err instanceof Error && depth < 10; err = err.cause, depth++) {
    const refusal = err as Error & { type?: unknown; retriable?: unknown };
    if (refusal.name !== "KafkaJSProtocolError" || refusal.retriable !== false) continue;
    const type = String(refusal.type);
    if (CURED_BY_A_NEW_PRODUCER.has(type)) return "transient";
    return type.endsWith("_AUTHORIZATION_FAILED") ? "setup" : "unpublishable";
  }
  return "transient";
}

/**
 * The one decision of what to do with an error. Errors that are not diffrelay's
 * own (a socket reset, a broker that is away, a server restarting) are transient:
 * the slot and the standby's position make a retry from the durable position safe.
 */
export function errorPolicy(err: unknown): ErrorPolicy {
  const kind: ErrorKind = err instanceof DiffrelayError ? err.kind : "transient";
  return { kind, ...POLICIES[kind] };
}
