import { describe, expect, it } from "vitest";
import type { ErrorKind } from "../../../src/errors/diffrelay-error.js";
import { DiffrelayError } from "../../../src/errors/diffrelay-error.js";
import { RepeatedFailureGuard } from "../../../src/errors/repeated-failure-guard.js";
import type { Logger } from "../../../src/observability/logger.js";
import { ReconnectBackoff } from "../../../src/retry/reconnect-backoff.js";
import { type ReconnectLoopOptions, runReconnecting } from "../../../src/retry/reconnect-loop.js";

/** No waiting between attempts: the waits asked for are recorded instead. */
class RecordedBackoff extends ReconnectBackoff {
  readonly waits: number[] = [];

  override pause(ms: number): Promise<void> {
    this.waits.push(ms);
    return Promise.resolve();
  }
}

function loop(sessions: (() => Promise<void>)[], fields: Partial<ReconnectLoopOptions> = {}) {
  const logged: { level: string; message: string }[] = [];
  const logger = {
    warn: (_: unknown, message: string) => logged.push({ level: "warn", message }),
    error: (_: unknown, message: string) => logged.push({ level: "error", message }),
  } as unknown as Logger;
  const errors: ErrorKind[] = [];
  let reconnects = 0;
  let stopping = false;
  const failures = new RepeatedFailureGuard(3);
  const backoff = new RecordedBackoff();
  const run = runReconnecting({
    session: async () => {
      const next = sessions.shift();
      if (next === undefined) {
        stopping = true;
        return;
      }
      await next();
    },
    stopping: () => stopping,
    position: () => "offset 7",
    backoff,
    failures,
    metrics: { errors: { inc: ({ kind }) => errors.push(kind) }, reconnects: { inc: () => reconnects++ } },
    logger,
    retryMessage: "session ended; resuming",
    ...fields,
  });
  return {
    run,
    logged,
    errors,
    failures,
    backoff,
    reconnects: () => reconnects,
    stop: () => {
      stopping = true;
    },
  };
}

const refused = () =>
  Promise.reject(Object.assign(new Error("connection refused"), { code: "ECONNREFUSED" }));

describe("runReconnecting", () => {
  it("retries a transient failure after a backoff, and a session that ends as asked ends the loop", async () => {
    const { run, logged, errors, reconnects, backoff } = loop([refused, async () => undefined]);
    await run;
    expect(errors).toEqual(["transient"]);
    expect(reconnects()).toBe(1);
    expect(backoff.waits).toEqual([500]);
    expect(logged).toEqual([{ level: "warn", message: "session ended; resuming" }]);
  });

  it("logs the same failure at one position as a stall once it reaches the limit, and goes on retrying", async () => {
    const { run, logged, failures } = loop([refused, refused, refused, refused]);
    await run;
    expect(logged.map((l) => l.level)).toEqual(["warn", "warn", "error", "error"]);
    expect(logged[2]?.message).toMatch(/^stalled: the same failure 3 times in a row at offset 7; /);
    expect(failures.stall?.attempts).toBe(4);
  });

  it("throws a failure the error policy stops on, after telling onFailure", async () => {
    const told: string[] = [];
    const drift = new DiffrelayError("drift", "row (id)=(1) is missing");
    const { run, reconnects } = loop([() => Promise.reject(drift)], {
      onFailure: (_err, description) => told.push(description),
    });
    await expect(run).rejects.toBe(drift);
    expect(told).toEqual(["row (id)=(1) is missing"]);
    expect(reconnects()).toBe(0);
  });

  it("retries such a failure while retryAnyway says so", async () => {
    let allowed = 1;
    const busy = new DiffrelayError("setup", "slot in use");
    const { run, reconnects } = loop([() => Promise.reject(busy), () => Promise.reject(busy)], {
      retryAnyway: () => allowed-- > 0,
    });
    await expect(run).rejects.toBe(busy);
    expect(reconnects()).toBe(1);
  });

  it("a transient failure after a stop was asked ends the loop without a retry", async () => {
    const state: { stop?: () => void } = {};
    const looping = loop([
      async () => {
        // After loop() has returned, which is when `state.stop` is set.
        await Promise.resolve();
        state.stop?.();
        await refused();
      },
    ]);
    state.stop = looping.stop;
    await looping.run;
    expect(looping.reconnects()).toBe(0);
    expect(looping.logged).toEqual([]);
  });
});
