import { describe, expect, test } from "vitest";
import {
  PAUSE_LIMIT_MS,
  PauseGate,
  type PauseState,
} from "../../../connectors/postgres-standby/pause-gate.js";
import type { Lsn } from "../../../src/change/lsn.js";
import { FakePauseRecord } from "./apply-fakes.js";

/** A gate over a scripted pause row, a clock that moves only when told, and no real waiting. */
function gateOver(points: (Lsn | null)[], fields: { stopping?: () => boolean; tick?: number } = {}) {
  const record = new FakePauseRecord(points);
  const clock = { now: 1_000_000 };
  const seen: PauseState[] = [];
  const logged: string[] = [];
  let heartbeats = 0;
  const gate = new PauseGate({
    record,
    wait: async () => {
      clock.now += fields.tick ?? 50;
      seen.push(gate.state);
    },
    heartbeat: async () => {
      heartbeats += 1;
    },
    stopping: fields.stopping ?? (() => false),
    logger: { info: (_fields, message) => logged.push(message), warn: (message) => logged.push(message) },
    now: () => clock.now,
  });
  return { gate, record, clock, seen, logged, heartbeats: () => heartbeats };
}

describe("pause gate", () => {
  test("running until a request is seen, running again when it goes", () => {
    const { gate } = gateOver([]);
    expect(gate.state).toEqual({ kind: "running" });
    expect(gate.mustPauseBefore(10n)).toBe(false);
    gate.requestSeen(100n);
    expect(gate.state).toEqual({ kind: "requested", before: 100n });
    gate.requestSeen(null);
    expect(gate.state).toEqual({ kind: "running" });
  });

  test("a request stops the first transaction at or after its point, not the ones before", () => {
    const { gate } = gateOver([]);
    gate.requestSeen(100n);
    expect(gate.mustPauseBefore(99n)).toBe(false);
    expect(gate.mustPauseBefore(100n)).toBe(true);
    expect(gate.mustPauseBefore(101n)).toBe(true);
  });

  test("holding records where it stands, heartbeats, and runs again once the pause is lifted", async () => {
    const { gate, record, seen, logged, heartbeats } = gateOver([100n, 100n, null]);
    gate.requestSeen(100n);
    await gate.hold(90n, 120n);
    expect(record.calls).toEqual(["paused at 90"]);
    expect(seen[0]).toEqual({
      kind: "holding",
      at: 90n,
      waiting: 120n,
      deadline: 1_000_000 + PAUSE_LIMIT_MS,
    });
    expect(seen).toHaveLength(3);
    expect(heartbeats()).toBe(3);
    expect(gate.state).toEqual({ kind: "running" });
    expect(logged).toEqual(["paused for verify"]);
  });

  test("a point moved beyond the waiting transaction lets it through and waits for the new point", async () => {
    const { gate, logged } = gateOver([100n, 200n]);
    gate.requestSeen(100n);
    await gate.hold(90n, 120n);
    expect(gate.state).toEqual({ kind: "requested", before: 200n });
    expect(gate.mustPauseBefore(120n)).toBe(false);
    expect(gate.mustPauseBefore(200n)).toBe(true);
    expect(logged).toEqual(["paused for verify", "pause point moved"]);
  });

  test("a point moved to the waiting transaction or before it keeps holding", async () => {
    const { gate, seen } = gateOver([120n, 110n, null]);
    gate.requestSeen(100n);
    await gate.hold(90n, 120n);
    expect(seen.map((s) => s.kind)).toEqual(["holding", "holding", "holding"]);
    expect(gate.state).toEqual({ kind: "running" });
  });

  test("a stopping applier stops holding", async () => {
    let stopping = false;
    const { gate, seen } = gateOver([100n], { stopping: () => stopping });
    gate.requestSeen(100n);
    const held = gate.hold(90n, 120n);
    stopping = true;
    await held;
    expect(seen).toHaveLength(1);
    expect(gate.state).toEqual({ kind: "running" });
  });

  test("requests polled while holding change nothing: the hold reads the row itself", async () => {
    const { gate, seen } = gateOver([100n, null]);
    gate.requestSeen(100n);
    const held = gate.hold(90n, 120n);
    gate.requestSeen(null);
    gate.requestSeen(300n);
    expect(gate.state.kind).toBe("holding");
    await held;
    expect(seen[0]?.kind).toBe("holding");
    expect(gate.state).toEqual({ kind: "running" });
  });

  test("a pause held past the limit is lifted: a dead verify cannot stop replication for good", async () => {
    const { gate, record, clock, logged } = gateOver([100n], { tick: 60_000 });
    gate.requestSeen(100n);
    const start = clock.now;
    await gate.hold(90n, 120n);
    expect(record.calls).toEqual(["paused at 90", "lifted"]);
    expect(gate.state).toEqual({ kind: "running" });
    expect(clock.now - start).toBeGreaterThan(PAUSE_LIMIT_MS);
    expect(clock.now - start).toBeLessThanOrEqual(PAUSE_LIMIT_MS + 60_000);
    expect(logged).toEqual(["paused for verify", "pause for verify held too long; resuming"]);
  });
});
