import { errorPolicy } from "./error-policy.js";

/** A failure that has recurred, identically, at one position: retrying alone is not getting past it. */
export interface Stall {
  /** Where the process keeps failing: an LSN for the capture, topic and offset for an applier. */
  position: string;
  /** The last of the identical failures, as the process reports it. */
  error: string;
  /** How many times in a row it failed this way at this position. */
  attempts: number;
  /** When the first of them happened (ISO 8601). */
  since: string;
}

/**
 * Counts failures that repeat at one position, so that no connector retries
 * the same failure forever in silence. Transient failures are retried (the
 * slot and the standby's position make that safe) but, once the same one has
 * happened `limit` times in a row at the same position, the process reports
 * itself stalled (/healthz 503, /status, `diffrelay_stalled`) until it gets
 * past that position. Shared by the capture and the applier so both mean the
 * same by "stalled".
 */
export class RepeatedFailureGuard {
  private last: { position: string; signature: string; attempts: number; since: Date } | null = null;
  private lastError = "";

  constructor(private readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new RangeError(`stall limit must be ≥ 1, got ${limit}`);
  }

  /**
   * Records a failure at `position`; returns the stall once this failure is the
   * `limit`-th identical one in a row there (and for each further one), else null.
   */
  failed(position: string, err: unknown, description: string): Stall | null {
    const signature = failureSignature(err);
    const same = this.last !== null && this.last.position === position && this.last.signature === signature;
    this.last =
      same && this.last
        ? { ...this.last, attempts: this.last.attempts + 1 }
        : { position, signature, attempts: 1, since: new Date() };
    this.lastError = description;
    return this.stall;
  }

  /** The process moved past the position it failed at (or has nothing left to do there): not stalled. */
  progressed(): void {
    this.last = null;
  }

  get stall(): Stall | null {
    if (this.last === null || this.last.attempts < this.limit) return null;
    return {
      position: this.last.position,
      error: this.lastError,
      attempts: this.last.attempts,
      since: this.last.since.toISOString(),
    };
  }
}

/**
 * What makes two failures "the same": the error's class, its kind, its code
 * (SQLSTATE, errno) and its message with numbers masked. Masked, because a
 * message may carry what changes between attempts (a pid, a waited time, a
 * backend's port) while the failure is the same; the position is keyed apart.
 */
export function failureSignature(err: unknown): string {
  const e = err instanceof Error ? (err as Error & { code?: unknown }) : null;
  const name = e?.name ?? typeof err;
  const code = typeof e?.code === "string" || typeof e?.code === "number" ? String(e.code) : "";
  const message = (e?.message ?? String(err)).replace(/\d+/g, "#");
  return `${errorPolicy(err).kind}|${name}|${code}|${message}`;
}
