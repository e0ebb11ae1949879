// Fault: the Kafka broker goes away under load: a controlled shutdown (SIGTERM) and a crash (SIGKILL), twice
// each, restarted after a short outage. The capture must keep the slot's position until the broker
// acknowledges again (nothing confirmed that Kafka did not take), the appliers must rejoin and resume from
// their standbys' positions. At the end both standbys equal the primary, nothing missing or doubled.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FaultScenario } from "../support/fault-scenario.js";
import { bounceKafka } from "../support/fault-stack.js";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("fault: Kafka broker stop and restart under load", () => {
  let scenario: FaultScenario;

  beforeAll(async () => {
    scenario = await FaultScenario.start({ prefix: "fault_kafka" });
  });

  afterAll(async () => {
    await scenario?.close();
  });

  it("capture and appliers reconnect after the broker restarts (term, kill), nothing lost or doubled", async () => {
    const faults: { mode: string; downMs: number; restartMs: number; recoveryMs: number }[] = [];
    // Short outages (the clients' own retries may bridge them) and one longer than the Kafka client's retry
    // budget (about 20 s), so the capture's session fails and restarts from the slot.
    const outages = [
      { mode: "term", downMs: 1_000 },
      { mode: "kill", downMs: 1_000 },
      { mode: "term", downMs: 1_000 },
      { mode: "kill", downMs: 30_000 },
    ] as const;
    for (const { mode, downMs } of outages) {
      await scenario.load.waitForCommits(30);
      await sleep(200 + Math.floor(Math.random() * 500));
      const { restartMs } = await bounceKafka(scenario.stack, mode, downMs);
      scenario.tally.add(`kafka stop/start ${mode}`);
      const recoveryMs = await scenario.recovered(180_000);
      faults.push({ mode, downMs, restartMs, recoveryMs });
    }
    scenario.tally.notes.push(JSON.stringify(faults));
    const capture = scenario.pipeline.capture.output();
    await scenario.finish("kafka-restart");
    // The long outage outlasted the client's retries: the capture ended its session and reconnected.
    expect(capture).toMatch(/capture session ended; reconnecting/);
    expect(scenario.tally.counts).toEqual({ "kafka stop/start term": 2, "kafka stop/start kill": 2 });
  }, 600_000);
});
