import kafkajs, { type Admin } from "kafkajs";

const { ConfigResourceTypes } = kafkajs;

/** Most bytes Kafka's record framing adds per message in a batch (length, attributes, deltas, key, headers). */
export const RECORD_OVERHEAD_BYTES = 32;

/**
 * How large the capture's messages and produce requests may be on a topic.
 * Kafka's max.message.bytes bounds a record batch after compression, and one
 * produce request of the capture is one record batch; compression can grow
 * incompressible bytes a little, and the batch has a header, hence headroom.
 */
export interface MessageLimits {
  /** A message is closed at this size: capture.maxMessageBytes, at most half the limit. */
  maxMessageBytes: number;
  /** No message is ever larger; larger values are split into VALUE_PART frames. */
  messageLimitBytes: number;
  /** One produce request at most, record overhead included. */
  maxRequestBytes: number;
}

export function messageLimits(
  topicMaxMessageBytes: number,
  configuredMaxMessageBytes: number,
): MessageLimits {
  const messageLimitBytes = Math.floor(topicMaxMessageBytes - 1024 - topicMaxMessageBytes / 64);
  if (messageLimitBytes < 8192) {
    throw new RangeError(`max.message.bytes ${topicMaxMessageBytes} leaves no room for a message`);
  }
  return {
    maxMessageBytes: Math.min(configuredMaxMessageBytes, Math.floor(messageLimitBytes / 2)),
    messageLimitBytes,
    // Larger requests gain little; a batch of small messages is what they are for.
    maxRequestBytes: Math.min(Math.max(configuredMaxMessageBytes, 1024 * 1024), messageLimitBytes),
  };
}

/** The topic's max.message.bytes as the broker applies it (the topic's own setting, else the broker's). */
export async function topicMaxMessageBytes(admin: Admin, topic: string): Promise<number> {
  const configs = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ["max.message.bytes"] }],
  });
  const value = configs.resources[0]?.configEntries.find(
    (e) => e.configName === "max.message.bytes",
  )?.configValue;
  const bytes = Number(value);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) {
    throw new Error(`topic ${topic} reports max.message.bytes ${String(value)}`);
  }
  return bytes;
}
