/**
 * Waits between reconnect attempts: 500 ms doubling to 30 s, back to the start
 * after a session that ran longer than the longest wait (it was healthy, so the
 * next failure is a new incident). stop() cuts a wait short.
 */
export class ReconnectBackoff {
  private delayMs: number;
  private wake: (() => void) | null = null;

  constructor(
    private readonly initialMs = 500,
    private readonly maxMs = 30_000,
  ) {
    this.delayMs = initialMs;
  }

  /** The wait before the next attempt, given how long the failed session ran. */
  next(sessionMs: number): number {
    if (sessionMs > this.maxMs) this.delayMs = this.initialMs;
    const delay = this.delayMs;
    this.delayMs = Math.min(this.delayMs * 2, this.maxMs);
    return delay;
  }

  pause(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  interrupt(): void {
    this.wake?.();
  }
}
