import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createKafka, orderedProducer } from "../../src/kafka/kafka-client.js";
import { createSinglePartitionTopic } from "../../src/kafka/topic-admin.js";
import { startTopicReader, type TopicReader, type TopicRecord } from "../../src/kafka/topic-reader.js";
import { createLogger } from "../../src/observability/logger.js";
import { testServices, uniqueName } from "../support/services.js";
import { deleteTopics } from "../support/topic-reader.js";

const logger = createLogger("warn", "topic-reader-test");
const kafka = createKafka(
  {
    brokers: testServices().kafkaBrokers,
    clientId: "topic-reader-test",
    tls: { enabled: false, insecure: false },
    requireDurability: false,
  },
  logger,
);
const admin = kafka.admin();
const producer = orderedProducer(kafka, { idempotent: true });
const topics: string[] = [];
const readers: TopicReader[] = [];

beforeAll(async () => {
  await admin.connect();
  await producer.connect();
});

afterAll(async () => {
  await Promise.all(readers.map((r) => r.stop()));
  await producer.disconnect();
  await admin.disconnect();
  await deleteTopics(testServices().kafkaBrokers, topics);
});

async function newTopic(compact = false): Promise<string> {
  const topic = uniqueName("reader");
  await createSinglePartitionTopic(admin, topic, { compact, durability: {} });
  topics.push(topic);
  return topic;
}

/** Appends `count` records keyed k<i % keys> with value v<first + i>, in sends of 50. */
async function append(topic: string, first: number, count: number, keys = count): Promise<void> {
  for (let i = 0; i < count; i += 50) {
    const messages = [];
    for (let j = i; j < Math.min(count, i + 50); j++) {
      messages.push({ key: `k${(first + j) % keys}`, value: `v${first + j}` });
    }
    await producer.send({ topic, acks: -1, messages });
  }
}

/** A reader that keeps what it is handed, and what it held when it was told it was caught up. */
async function collect(topic: string, extra: { from?: bigint; purpose?: string } = {}) {
  const seen: TopicRecord[] = [];
  const atCaughtUp: number[] = [];
  const reader = await startTopicReader({
    kafka,
    topic,
    purpose: extra.purpose ?? "test",
    ...(extra.from === undefined ? {} : { from: extra.from }),
    onRecords: (records) => {
      seen.push(...records);
    },
    onCaughtUp: () => {
      atCaughtUp.push(seen.length);
    },
  });
  readers.push(reader);
  return { reader, seen, atCaughtUp };
}

async function until(what: string, probe: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("reading a topic from its start with a throw-away consumer group", () => {
  it("an empty topic is caught up at once, and what is appended later is still delivered", async () => {
    const topic = await newTopic(true);
    const { reader, seen, atCaughtUp } = await collect(topic);
    expect(reader.endAtStart).toBe(0n);
    expect(reader.caughtUp).toBe(true);
    expect(atCaughtUp).toEqual([0]);
    await reader.waitCaughtUp(1);
    await append(topic, 0, 3);
    await until("3 records", () => seen.length === 3);
    expect(seen.map((r) => [r.offset, r.key?.toString(), r.value?.toString()])).toEqual([
      [0n, "k0", "v0"],
      [1n, "k1", "v1"],
      [2n, "k2", "v2"],
    ]);
    expect(reader.readTo).toBe(3n);
    expect(atCaughtUp).toEqual([0]);
  });

  it("is caught up only once every record that existed at its start was delivered, in offset order", async () => {
    const topic = await newTopic(true);
    await append(topic, 0, 600, 7);
    const { reader, seen, atCaughtUp } = await collect(topic);
    expect(reader.endAtStart).toBe(600n);
    // Appended while the reader starts: delivered, but not needed for being caught up.
    await append(topic, 600, 100, 7);
    await reader.waitCaughtUp(30_000);
    expect(atCaughtUp).toHaveLength(1);
    expect(atCaughtUp[0]).toBeGreaterThanOrEqual(600);
    expect(seen.slice(0, 600).map((r) => r.offset)).toEqual(Array.from({ length: 600 }, (_, i) => BigInt(i)));
    await until("700 records", () => seen.length === 700);
    expect(seen.map((r) => r.value?.toString())).toEqual(Array.from({ length: 700 }, (_, i) => `v${i}`));
    expect(reader.readTo).toBe(700n);
  });

  it("awaits onCaughtUp before the next batch: a view built from it is never overtaken by a later one", async () => {
    const topic = await newTopic();
    await append(topic, 0, 50);
    const events: string[] = [];
    let caughtUp = false;
    const reader = await startTopicReader({
      kafka,
      topic,
      purpose: "test",
      onRecords: (records) => {
        if (caughtUp) events.push(`after ${records[0]?.offset}`);
      },
      onCaughtUp: async () => {
        await append(topic, 50, 1);
        // The record just appended is fetched meanwhile; it must wait for this call to end.
        await new Promise((r) => setTimeout(r, 1500));
        events.push("caught up");
        caughtUp = true;
      },
    });
    readers.push(reader);
    await until("the record appended while caught up", () => events.length === 2);
    expect(events).toEqual(["caught up", "after 50"]);
  });

  it("a throw in onCaughtUp of an empty topic rejects startTopicReader", async () => {
    const topic = await newTopic();
    await expect(
      startTopicReader({
        kafka,
        topic,
        purpose: "test",
        onRecords: () => undefined,
        onCaughtUp: () => {
          throw new Error("cannot act on an empty topic");
        },
      }),
    ).rejects.toThrow("cannot act on an empty topic");
  });

  it("starts at `from`, and is caught up at the end the topic had", async () => {
    const topic = await newTopic();
    await append(topic, 0, 40);
    const { reader, seen } = await collect(topic, { from: 25n });
    await reader.waitCaughtUp(30_000);
    expect(seen.map((r) => r.offset)).toEqual(Array.from({ length: 15 }, (_, i) => BigInt(25 + i)));
  });

  it("a throw in onRecords stops the reader: its failure, no record after it, waitCaughtUp rejects", async () => {
    const topic = await newTopic();
    await append(topic, 0, 10);
    const failures: Error[] = [];
    const seen: bigint[] = [];
    const reader = await startTopicReader({
      kafka,
      topic,
      purpose: "test",
      onRecords: (records) => {
        for (const r of records) {
          if (r.offset === 4n) throw new Error("offset 4 is bad");
          seen.push(r.offset);
        }
      },
      onFailure: (error) => failures.push(error),
    });
    readers.push(reader);
    await expect(reader.waitCaughtUp(30_000)).rejects.toThrow("offset 4 is bad");
    expect(reader.failure?.message).toBe("offset 4 is bad");
    expect(failures).toHaveLength(1);
    expect(reader.caughtUp).toBe(false);
    await append(topic, 10, 5);
    await new Promise((r) => setTimeout(r, 1000));
    expect(seen).toEqual([0n, 1n, 2n, 3n]);
  });

  it("waitCaughtUp names the topic and offsets when it times out; stop() deletes the reader's group", async () => {
    const topic = await newTopic();
    await append(topic, 0, 5);
    const purpose = uniqueName("gone");
    const { reader } = await collect(topic, { purpose });
    await expect(reader.waitCaughtUp(0)).rejects.toThrow(
      new RegExp(`topic ${topic} not read to offset 5 .* within 0 ms: read up to 0`),
    );
    await reader.waitCaughtUp(30_000);
    const groupsOf = async () =>
      (await admin.listGroups()).groups.filter((g) => g.groupId.startsWith(`diffrelay-${purpose}-`));
    expect(await groupsOf()).toHaveLength(1);
    await reader.stop();
    expect(await groupsOf()).toHaveLength(0);
    await expect(reader.waitCaughtUp(1)).resolves.toBeUndefined();
  });
});
