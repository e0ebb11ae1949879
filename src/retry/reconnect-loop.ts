import type { ErrorKind } from "../errors/diffrelay-error.js";
import { errorPolicy } from "../errors/error-policy.js";
import type { RepeatedFailureGuard } from "../errors/repeated-failure-guard.js";
import type { Logger } from "../observability/logger.js";
import { redactError } from "../observability/redact.js";
import type { ReconnectBackoff } from "./reconnect-backoff.js";

export interface ReconnectLoopOptions {
  /** One session from the durable position: resolves when it ends as asked (a stop, a drain's end), rejects on a failure. */
  session: () => Promise<void>;
  stopping: () => boolean;
  /** Where a failed session resumes (an LSN, a topic's offset): the stall guard keys failures by it. */
  position: () => string;
  backoff: ReconnectBackoff;
  failures: RepeatedFailureGuard;
  metrics: { errors: { inc(labels: { kind: ErrorKind }): void }; reconnects: { inc(): void } };
  logger: Logger;
  /** Logged (warn) when a failed session is retried and is not (yet) a stall. */
  retryMessage: string;
  /** Told of every failure, with its redacted description, before it is retried or thrown. */
  onFailure?: (err: unknown, description: string) => void;
  /** A failure the error policy stops on that this connector retries nonetheless (while it says so). */
  retryAnyway?: (err: unknown) => boolean;
}

/**
 * The one reconnect loop of the long-running connectors (capture, applier):
 * runs sessions until stopped. A failure the error policy retries starts a new
 * session after a backoff, from the durable position; any other is thrown. The
 * same failure at the same position `stallAfter` times in a row is logged as a
 * stall (and reported by the guard) instead of a plain retry, so that no
 * failure is retried forever in silence. A failure once a stop was asked ends
 * the loop: the stop is what ended the session, and the position is durable.
 */
export async function runReconnecting(options: ReconnectLoopOptions): Promise<void> {
  const { backoff, failures, metrics, logger } = options;
  while (!options.stopping()) {
    const startedAt = Date.now();
    try {
      await options.session();
    } catch (err) {
      const { kind, retry } = errorPolicy(err);
      metrics.errors.inc({ kind });
      const description = redactError(err);
      options.onFailure?.(err, description);
      if (!retry && !options.retryAnyway?.(err)) throw err;
      if (options.stopping()) return;
      metrics.reconnects.inc();
      const retryInMs = backoff.next(Date.now() - startedAt);
      const stall = failures.failed(options.position(), err, description);
      if (stall) {
        logger.error(
          { err, stall, retryInMs },
          `stalled: the same failure ${stall.attempts} times in a row at ${stall.position}; retrying alone will not get past it, fix its cause (the error says what and where)`,
        );
      } else {
        logger.warn({ err, retryInMs }, options.retryMessage);
      }
      await backoff.pause(retryInMs);
    }
  }
}
