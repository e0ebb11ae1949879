// Fault: PostgreSQL goes away under load. The primary is stopped and restarted in fast mode (clean shutdown,
// sessions terminated) and in immediate mode (no checkpoint, crash recovery at start), twice each; each
// standby is stopped and restarted too. The capture must reconnect to the slot, the appliers to their
// standbys, and the write load (which reconnects, and checks its unanswered COMMITs on the source afterwards)
// goes on. At the end every standby equals the primary: no transaction missing, none applied twice.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FaultScenario } from "../support/fault-scenario.js";
import { bouncePostgres } from "../support/fault-stack.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("fault: PostgreSQL stop and restart under load", () => {
  let scenario: FaultScenario;

  beforeAll(async () => {
    scenario = await FaultScenario.start({ prefix: "fault_pg" });
  });

  afterAll(async () => {
    await scenario?.close();
  });

  it("the capture reconnects after the primary restarts (fast, immediate), the appliers after their standby restarts, nothing lost or doubled", async () => {
    const faults: { fault: string; restartMs: number; recoveryMs: number }[] = [];
    const bounce = async (cluster: string, mode: "fast" | "immediate") => {
      // Let the load run into the stream so the stop lands mid-flow.
      await scenario.load.waitForCommits(30);
      await sleep(200 + Math.floor(Math.random() * 500));
      const { restartMs } = await bouncePostgres(scenario.stack, cluster, mode, 1_000);
      scenario.tally.add(`${cluster === "primary" ? "primary" : "standby"} stop/start ${mode}`);
      const recoveryMs = await scenario.recovered();
      faults.push({ fault: `${cluster} ${mode}`, restartMs, recoveryMs });
    };
    for (const mode of ["fast", "immediate", "fast", "immediate"] as const) await bounce("primary", mode);
    await bounce("standby1", "fast");
    await bounce("standby2", "immediate");
    await bounce("standby1", "immediate");
    await bounce("standby2", "fast");
    scenario.tally.notes.push(JSON.stringify(faults));

    const { load } = await scenario.finish("postgres-restart");
    // The primary's restarts did reach the load: it reconnected, and the pipeline carried on.
    expect(load.reconnects).toBeGreaterThanOrEqual(4);
    expect(scenario.tally.total()).toBe(8);
    // The processes survived every fault: reconnects, not restarts.
    expect(scenario.pipeline.capture.kill("SIGCONT"), "capture still running").toBe(true);
  }, 600_000);
});
