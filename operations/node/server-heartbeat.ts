import type { MonotonicClock } from "../lease/index.js";

/** One look at the server: resolves when it answered a query, rejects with why not. */
export type ServerProbe = () => Promise<void>;

/**
 * Whether a node's database server answers, asked every `everyMs`: a primary
 * renews its lease only while it does, so that a server that died (the OOM
 * killer, a failed disk) while its node lives on does not keep the cluster from
 * electing another primary. A probe that hangs (a frozen server) counts as no
 * answer; the next starts only once it settled, so probes never pile up.
 */
export class ServerHeartbeat {
  private answeredAt = Number.NEGATIVE_INFINITY;
  private problem: string | null = "not asked yet";
  private timer: NodeJS.Timeout | null = null;
  private inFlight: Promise<void> | null = null;

  constructor(
    private readonly probe: ServerProbe,
    private readonly clock: MonotonicClock,
    private readonly everyMs: number,
  ) {}

  start(): void {
    if (this.timer) return;
    void this.check();
    this.timer = setInterval(() => void this.check(), this.everyMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
  }

  /** Asks the server now (or waits for the question already asked); resolves with why it did not answer, null when it did. */
  async check(): Promise<string | null> {
    this.inFlight ??= this.ask().finally(() => {
      this.inFlight = null;
    });
    await this.inFlight;
    return this.problem;
  }

  /** Null when the server answered within the last `ms`; otherwise why it did not, and for how long. */
  silence(ms: number): string | null {
    const silentMs = this.clock() - this.answeredAt;
    if (silentMs < ms) return null;
    const since = Number.isFinite(silentMs) ? `for ${Math.round(silentMs)} ms` : "since the node started";
    // No problem recorded but no answer either: nothing was asked meanwhile (this process was paused).
    return `its database server has not answered ${since} (${this.problem ?? "not asked meanwhile: this process was paused"})`;
  }

  private async ask(): Promise<void> {
    const askedAt = this.clock();
    let timeout: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.probe(),
        new Promise<never>((_, reject) => {
          timeout = setTimeout(
            () => reject(new Error(`no answer within ${this.everyMs * 5} ms`)),
            this.everyMs * 5,
          );
        }),
      ]);
      this.answeredAt = Math.max(this.answeredAt, askedAt);
      this.problem = null;
    } catch (err) {
      this.problem = (err as Error).message;
    } finally {
      clearTimeout(timeout);
    }
  }
}
