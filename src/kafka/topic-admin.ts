import type { Admin } from "kafkajs";
import type { SourceTopics } from "./topic-names.js";

/** Kafka's record batch limit for our topics; a capture message stays well below it. */
export const TOPIC_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

/**
 * Creates the data topic (one partition: offset order is commit order) and the
 * compacted schema topic. An existing data topic with more partitions would
 * break total order, so it is refused rather than used.
 */
export async function ensureSourceTopics(admin: Admin, topics: SourceTopics): Promise<void> {
  const existing = new Set(await admin.listTopics());
  const toCreate = [];
  if (!existing.has(topics.data)) {
    toCreate.push({
      topic: topics.data,
      numPartitions: 1,
      configEntries: [{ name: "max.message.bytes", value: String(TOPIC_MAX_MESSAGE_BYTES) }],
    });
  }
  if (!existing.has(topics.schemas)) {
    toCreate.push({
      topic: topics.schemas,
      numPartitions: 1,
      configEntries: [
        { name: "cleanup.policy", value: "compact" },
        { name: "max.message.bytes", value: String(TOPIC_MAX_MESSAGE_BYTES) },
      ],
    });
  }
  if (toCreate.length > 0) {
    // A concurrent creator wins the race harmlessly: createTopics reports false then.
    await admin.createTopics({ topics: toCreate, waitForLeaders: true });
  }
  const metadata = await admin.fetchTopicMetadata({ topics: [topics.data] });
  const partitions = metadata.topics[0]?.partitions.length ?? 0;
  if (partitions !== 1) {
    throw new Error(
      `topic ${topics.data} has ${partitions} partitions; diffrelay needs exactly 1 so that offset order is commit order`,
    );
  }
}

export interface TopicOffsets {
  /** The earliest offset still held (retention may have deleted what came before). */
  low: bigint;
  /** The offset the next message will get. */
  high: bigint;
}

export async function partitionOffsets(admin: Admin, topic: string): Promise<TopicOffsets> {
  const offsets = await admin.fetchTopicOffsets(topic);
  const p0 = offsets.find((o) => o.partition === 0);
  if (!p0) throw new Error(`topic ${topic} has no partition 0`);
  return { low: BigInt(p0.low), high: BigInt(p0.high) };
}
