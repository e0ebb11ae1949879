import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawnDiffrelay } from "../support/child-process.js";
import {
  createTestDatabase,
  runSql,
  type TestDatabase,
  testServices,
  uniqueName,
} from "../support/services.js";

let standby: TestDatabase;

beforeAll(async () => {
  standby = await createTestDatabase(testServices().standbyUrls[0] as string, "seed_interrupted");
});

afterAll(async () => {
  await standby?.drop();
});

describe("an interrupted seed", () => {
  it("keeps an applier from starting on half-copied tables", async () => {
    const topic = uniqueName("interrupted");
    // What a seed leaves behind when it dies mid-copy (seed-runner.ts marks the standby first).
    const migrate = spawnDiffrelay(["migrate", "--standby-url", standby.url], {});
    expect((await migrate.exited).code).toBe(0);
    await runSql(standby.url, "INSERT INTO diffrelay.seed_in_progress (topic) VALUES ($1)", [topic]);

    const apply = spawnDiffrelay(
      [
        "apply",
        "--standby-url",
        standby.url,
        "--standby-name",
        "interrupted",
        "--brokers",
        testServices().kafkaBrokers.join(","),
        "--topic",
        topic,
      ],
      {},
    );
    // The applier waits for the topic before it looks at the standby: create it as the capture would.
    const { default: kafkajs } = await import("kafkajs");
    const admin = new kafkajs.Kafka({ brokers: testServices().kafkaBrokers, logLevel: 0 }).admin();
    await admin.connect();
    try {
      await admin.createTopics({ topics: [{ topic }, { topic: `${topic}.schemas` }], waitForLeaders: true });
      const exit = await apply.exited;
      expect(exit.code).toBe(4);
      expect(apply.output()).toMatch(/a seed of this standby .* did not finish.*Run diffrelay seed again/);
    } finally {
      await admin.deleteTopics({ topics: [topic, `${topic}.schemas`] }).catch(() => undefined);
      await admin.disconnect();
    }
  });
});
