import { DiffrelayError } from "../../src/errors/diffrelay-error.js";
import type { NodeReport } from "../cluster/index.js";
import type { CaptureLastKnown } from "../promote/capture-last-known.js";

/** What a failover may have lost, from what the old capture last said. */
export interface MayBeLost {
  /** none: zero-loss mode was on, so every commit a client saw returned was durable in Kafka first. */
  acknowledgedCommits: "none" | "possible";
  /** WAL the old capture had not confirmed as of its last keepalive (a lower bound); 0 with zero-loss mode on, null when unknown. */
  slotLagBytes: number | null;
  why: string;
}

/** What a failover knows of the old primary's capture, and where it learnt it. */
export interface OldCaptureKnown extends CaptureLastKnown {
  /** `its /status`, `<node>'s report on the cluster topic at <time>`, or why nothing is known. */
  from: string;
}

/**
 * The old capture as its /status says when it answers; else as the old
 * primary's last report of that epoch on the cluster topic says. A machine
 * death takes the node with the database, and the failover (and an
 * orchestrator reading its exit code) must still know whether zero-loss mode
 * was on. The report is at most a report interval old; the mode it holds is
 * the server's setting, which only an operator changes.
 */
export function oldCaptureKnown(
  live: CaptureLastKnown,
  report: NodeReport | undefined,
  epoch: number,
): OldCaptureKnown {
  if (live.zeroLoss !== "unknown") return { ...live, from: "its /status" };
  if (report?.epoch === epoch && report.role === "primary" && report.capture) {
    return { ...report.capture, from: `${report.node}'s report on the cluster topic at ${report.at}` };
  }
  const reported = report
    ? `its last report on the cluster topic (${report.role} of epoch ${report.epoch}, at ${report.at}) says nothing of a capture of epoch ${epoch}`
    : "the cluster topic holds no report of it";
  return { ...live, from: `the old capture's /status did not answer, and ${reported}` };
}

/**
 * The old primary fenced itself for a switchover that did not finish, and
 * reported its topic's end at that fence: everything it ever committed is
 * below that end, so when the failover drains to at least it, no acknowledged
 * commit can be lost, whatever the zero-loss mode. Null otherwise.
 */
export function fencedForHandOver(
  report: NodeReport | undefined,
  epoch: number,
  drainedEnd: bigint,
): MayBeLost | null {
  if (!report || report.epoch <= epoch || report.fencedEndOffset === null) return null;
  if (BigInt(report.fencedEndOffset) > drainedEnd) return null;
  return {
    acknowledgedCommits: "none",
    slotLagBytes: 0,
    why:
      `the old primary ${report.node} fenced itself for the role change to epoch ${report.epoch} and reported its topic's end, offset ${report.fencedEndOffset} ` +
      `(fenced at ${report.fencedAt ?? "unknown"}): everything it committed is below it, and every node that follows holds the topic to offset ${drainedEnd}`,
  };
}

export function lossReport(lastKnown: CaptureLastKnown & { from?: string }): MayBeLost {
  if (lastKnown.zeroLoss === "required") {
    return {
      acknowledgedCommits: "none",
      slotLagBytes: 0,
      why:
        `zero-loss mode was on (${lastKnown.from ?? "its /status"}; the capture's sync_state ${lastKnown.syncState ?? "unknown"}): ` +
        "every commit returned to a client was durable in Kafka first, and is on every node that follows",
    };
  }
  const mode =
    lastKnown.zeroLoss === "unknown"
      ? `not known (${lastKnown.from ?? "the old capture's /status did not answer"})`
      : `${lastKnown.zeroLoss} (${lastKnown.from ?? "its /status"})`;
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
