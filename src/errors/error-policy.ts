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
};

/**
 * The one decision of what to do with an error. Errors that are not diffrelay's
 * own (a socket reset, a broker that is away, a server restarting) are transient:
 * the slot and the standby's position make a retry from the durable position safe.
 */
export function errorPolicy(err: unknown): ErrorPolicy {
  const kind: ErrorKind = err instanceof DiffrelayError ? err.kind : "transient";
  return { kind, ...POLICIES[kind] };
}
