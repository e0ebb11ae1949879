import { formatLsn, type Lsn } from "../../src/change/lsn.js";

/**
 * The applier's side of verify's pause (docs/operations.md,
 * migrations/standby/003_apply_pause.sql). Verify asks for a stop before the
 * first source transaction at or after an LSN; the applier commits what it
 * has, records where it stands and holds until verify lifts the pause or
 * moves the point past the transaction waiting here (verify pauses first at
 * the source's current position, then exports its snapshot and moves the
 * point to it, so that no transaction slips past before the request is seen).
 */
export type PauseState =
  | { kind: "running" }
  /** Verify asked for a stop before the first transaction at or after `before`. */
  | { kind: "requested"; before: Lsn }
  /** Stopped with `at` applied, the transaction with commit LSN `waiting` held back, until `deadline`. */
  | { kind: "holding"; at: Lsn; waiting: Lsn; deadline: number };

/** The standby's pause row for this applier's topic. */
export interface PauseRecord {
  markPausedAt(at: Lsn): Promise<void>;
  /** The requested stop point, whether or not the applier stopped for it; null once lifted. */
  readPausePoint(): Promise<Lsn | null>;
  liftPause(): Promise<void>;
}

export interface PauseGateOptions {
  record: PauseRecord;
  /** Waits between polls while holding; may resolve early when the applier stops. */
  wait: (ms: number) => Promise<void>;
  /** Keeps the applier's consumer group membership while it holds. */
  heartbeat: () => Promise<void>;
  stopping: () => boolean;
  logger: { info(fields: object, message: string): void; warn(message: string): void };
  now?: () => number;
  /** The longest a verify may hold the applier paused. */
  limitMs?: number;
}

/** A verify that died must not stop replication for good. */
export const PAUSE_LIMIT_MS = 10 * 60_000;
const HOLD_POLL_MS = 50;

export class PauseGate {
  private current: PauseState = { kind: "running" };
  private readonly now: () => number;
  private readonly limitMs: number;

  constructor(private readonly options: PauseGateOptions) {
    this.now = options.now ?? Date.now;
    this.limitMs = options.limitMs ?? PAUSE_LIMIT_MS;
  }

  get state(): PauseState {
    return this.current;
  }

  /**
   * What the standby holds as a request not yet stopped for (polled on a
   * connection of its own). Ignored while holding: the hold reads the row itself.
   */
  requestSeen(before: Lsn | null): void {
    if (this.current.kind === "holding") return;
    this.current = before === null ? { kind: "running" } : { kind: "requested", before };
  }

  /** Whether the transaction with this commit LSN must wait for `hold()` first. */
  mustPauseBefore(commitLsn: Lsn): boolean {
    return this.current.kind === "requested" && commitLsn >= this.current.before;
  }

  /**
   * Holds with `at` committed and the transaction `waiting` not begun, until
   * the pause is lifted (or the applier stops, or the limit passes) or the
   * point moves beyond `waiting`.
   */
  async hold(at: Lsn, waiting: Lsn): Promise<void> {
    const { record, logger } = this.options;
    this.current = { kind: "holding", at, waiting, deadline: this.now() + this.limitMs };
    await record.markPausedAt(at);
    logger.info({ lastCommitLsn: formatLsn(at) }, "paused for verify");
    while (this.current.kind === "holding") {
      await this.options.wait(HOLD_POLL_MS);
      await this.options.heartbeat();
      this.current = await this.afterPoll(this.current, await record.readPausePoint());
    }
  }

  private async afterPoll(
    holding: PauseState & { kind: "holding" },
    before: Lsn | null,
  ): Promise<PauseState> {
    if (before === null || this.options.stopping()) return { kind: "running" };
    if (before > holding.waiting) {
      this.options.logger.info({ pauseBefore: formatLsn(before) }, "pause point moved");
      return { kind: "requested", before };
    }
    if (this.now() > holding.deadline) {
      await this.options.record.liftPause();
      this.options.logger.warn("pause for verify held too long; resuming");
      return { kind: "running" };
    }
    return holding;
  }
}
