// Smoke tests of the real services the suite runs on: the broker, pgoutput streaming, and the local stack's
// own lifecycle. No mocks: if these fail, every integration test would fail for the same reason.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Kafka, logLevel } from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type InsertMessage,
  MAX_VALUE_BYTES,
} from "../../connectors/postgres-source/pgoutput/pgoutput-decoder.js";
import { SlotReader } from "../../connectors/postgres-source/slot-reader.js";
import { stackStatus, startStack, stopStack } from "../../scripts/stack/index.js";
import { descendants, isAlive, processesMentioning } from "../../scripts/stack/processes.js";
import { readState, type StackState, writeState } from "../../scripts/stack/stack-state.js";
import { asText } from "../support/pgoutput-text.js";
import {
  createTestDatabase,
  runSql,
  type TestDatabase,
  testServices,
  uniqueName,
} from "../support/services.js";

describe("kafka broker", () => {
  it("round-trips a message through a freshly created topic with kafkajs", async () => {
    const { kafkaBrokers } = testServices();
    const kafka = new Kafka({ clientId: "smoke", brokers: kafkaBrokers, logLevel: logLevel.ERROR });
    const topic = uniqueName("smoke_topic");
    const admin = kafka.admin();
    await admin.connect();
    try {
      expect(await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }] })).toBe(
        true,
      );
      const producer = kafka.producer({ maxInFlightRequests: 1 });
      await producer.connect();
      const payload = `hello ${topic}`;
      await producer.send({ topic, messages: [{ key: "k1", value: payload }] });
      await producer.disconnect();

      const consumer = kafka.consumer({ groupId: uniqueName("smoke_group"), maxWaitTimeInMs: 100 });
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      const received = await new Promise<{ key: string; value: string }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("no message within 60 s")), 60_000);
        void consumer.run({
          eachMessage: async ({ message }) => {
            clearTimeout(timer);
            resolve({ key: String(message.key), value: String(message.value) });
          },
        });
      });
      await consumer.disconnect();
      expect(received).toEqual({ key: "k1", value: payload });
    } finally {
      await admin.deleteTopics({ topics: [topic] }).catch(() => undefined);
      await admin.disconnect();
    }
  });
});

describe("pgoutput streaming from the primary", () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase(testServices().sourceUrl, "smoke");
  });
  afterAll(async () => {
    await db?.drop();
  });

  it("receives an insert through a pgoutput slot, and stop() releases the slot", async () => {
    const slot = uniqueName("smoke_slot");
    const publication = uniqueName("smoke_pub");
    await runSql(db.url, "CREATE TABLE items (id int PRIMARY KEY, label text NOT NULL)");
    await runSql(db.url, `CREATE PUBLICATION ${publication} FOR TABLE items`);
    await runSql(db.url, "SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [slot]);

    const inserts: InsertMessage[] = [];
    const reader = new SlotReader({
      connection: db.url,
      slotName: slot,
      publicationName: publication,
      applicationName: slot,
      maxValueBytes: MAX_VALUE_BYTES,
      isIdle: () => false,
      statusDelayMs: () => 0,
      onMessage: (msg) => {
        if (msg.tag === "insert") {
          inserts.push(asText(msg) as InsertMessage);
        }
        return undefined;
      },
    });
    // start() settles only when the stream ends, so it runs alongside the test.
    const streaming = reader.start();
    await runSql(db.url, "INSERT INTO items VALUES (1, 'first')");
    await expect.poll(() => inserts.length, { timeout: 60_000 }).toBe(1);
    await reader.stop();
    await streaming;

    expect(inserts[0]?.newTuple).toEqual(["1", "first"]);
    // The slot is released once the walsender is gone; drop it explicitly (the database drop would too).
    await expect
      .poll(
        async () =>
          (await runSql(db.url, "SELECT active FROM pg_replication_slots WHERE slot_name = $1", [slot]))
            .rows[0]?.active,
        {
          timeout: 10_000,
        },
      )
      .toBe(false);
    await runSql(db.url, "SELECT pg_drop_replication_slot($1)", [slot]);
  });
});

describe("local stack lifecycle", () => {
  it("leaves no process behind after down (private stack in a temp dir)", async () => {
    const baseDir = mkdtempSync(join(tmpdir(), "diffrelay-stack-"));
    try {
      const up = await startStack({ baseDir, clusters: ["primary"] });
      expect(up.wasRunning).toBe(false);
      expect(up.env.DIFFRELAY_SOURCE_URL).toMatch(/^postgres:\/\/stack_admin:/);
      await runSql(up.env.DIFFRELAY_SOURCE_URL as string, "SELECT 1");

      // A second start must reuse the running processes, not spawn duplicates.
      const before = stackStatus({ baseDir }).map((s) => s.pid);
      const again = await startStack({ baseDir, clusters: ["primary"] });
      expect(again.wasRunning).toBe(true);
      expect(stackStatus({ baseDir }).map((s) => s.pid)).toEqual(before);

      const state = readState(baseDir);
      const roots = [state.pg.primary?.pid, state.kafka?.pid].filter((p): p is number => !!p);
      expect(roots).toHaveLength(2);
      const all = [...roots, ...roots.flatMap((p) => descendants(p))];
      expect(all.length).toBeGreaterThan(2);

      await stopStack({ baseDir });
      expect(all.filter((p) => isAlive(p))).toEqual([]);
      expect(processesMentioning(baseDir)).toEqual([]);
      expect(stackStatus({ baseDir }).every((s) => !s.running)).toBe(true);
    } finally {
      await stopStack({ baseDir, purge: true });
      rmSync(baseDir, { recursive: true, force: true });
    }
  });

  /** A private stack made, then stopped, in a temp dir: `change` alters its record before `check` starts it again. */
  async function restartStopped(
    change: (state: StackState, baseDir: string) => void,
    check: (baseDir: string) => Promise<void>,
  ): Promise<void> {
    const baseDir = mkdtempSync(join(tmpdir(), "diffrelay-stack-"));
    try {
      await startStack({ baseDir, clusters: ["primary"] });
      await stopStack({ baseDir });
      const state = readState(baseDir);
      change(state, baseDir);
      writeState(state);
      await check(baseDir);
    } finally {
      await stopStack({ baseDir, purge: true });
      rmSync(baseDir, { recursive: true, force: true });
    }
  }

  it("restarts a stack whose recorded Kafka jars are gone (made by a checkout since removed) from this checkout's jars", async () => {
    await restartStopped(
      (state, baseDir) => {
        if (!state.kafka) throw new Error("the stack recorded no broker");
        state.kafka.libDir = join(baseDir, "removed-worktree", ".cache", "kafka", "lib");
      },
      async (baseDir) => {
        const again = await startStack({ baseDir, clusters: ["primary"] });
        expect(again.state.kafka?.libDir).not.toContain("removed-worktree");
        expect(again.started).toContain("kafka");
      },
    );
  });

  it("a start that fails stops what it started before it throws", async () => {
    await restartStopped(
      (state) => {
        if (!state.kafka) throw new Error("the stack recorded no broker");
        // A broker that cannot start: its configuration file is gone.
        rmSync(join(state.kafka.dir, "server.properties"));
      },
      async (baseDir) => {
        await expect(startStack({ baseDir, clusters: ["primary"] })).rejects.toThrow(/Kafka/);
        expect(stackStatus({ baseDir }).filter((s) => s.running)).toEqual([]);
        expect(processesMentioning(baseDir)).toEqual([]);
      },
    );
  });
});
