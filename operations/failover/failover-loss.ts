import { DiffrelayError } from "../../src/errors/diffrelay-error.js";
import type { CaptureLastKnown } from "../promote/capture-last-known.js";

/** What a failover may have lost, from what the old capture last said. */
export interface MayBeLost {
  /** none: zero-loss mode was on, so every commit a client saw returned was durable in Kafka first. */
  acknowledgedCommits: "none" | "possible";
  /** WAL the old capture had not confirmed as of its last keepalive (a lower bound); 0 with zero-loss mode on, null when unknown. */
  slotLagBytes: number | null;
  why: string;
}

export function lossReport(lastKnown: CaptureLastKnown): MayBeLost {
  if (lastKnown.zeroLoss === "required") {
    return {
      acknowledgedCommits: "none",
      slotLagBytes: 0,
      why: "zero-loss mode was on: every commit returned to a client was durable in Kafka first, and is on every node that follows",
    };
  }
  const mode =
    lastKnown.zeroLoss === "unknown"
      ? "not known (the old capture's /status did not answer)"
      : lastKnown.zeroLoss;
  return {
    acknowledgedCommits: "possible",
    slotLagBytes: lastKnown.slotLagBytes,
    why:
      `zero-loss mode was ${mode}: commits the old primary acknowledged but its capture had not published are lost; ` +
      `the capture's last known slot lag was ${lastKnown.slotLagBytes ?? "unknown"} bytes of WAL (as of the walsender's last keepalive: a lower bound); ` +
      "the old primary's rejoin (its node's, by itself, or `diffrelay rejoin`) lists the lost transactions exactly once its database is back",
  };
}

/** Failover would change nothing: the reason says what to do instead (exit 3). */
export class FailoverRefusedError extends DiffrelayError {
  override readonly name = "FailoverRefusedError";

  constructor(message: string, options?: { cause?: unknown }) {
    super("setup", message, options);
  }
}

/** The old primary came back during the failover and published past the drained end (exit 4). */
export class FailoverDivergedError extends DiffrelayError {
  override readonly name = "FailoverDivergedError";

  constructor(message: string) {
    super("drift", message);
  }
}
