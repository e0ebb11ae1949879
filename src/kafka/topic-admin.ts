import kafkajs, { type Admin } from "kafkajs";
import { DiffrelayError } from "../errors/diffrelay-error.js";
import type { SourceTopics } from "./topic-names.js";

const { ConfigResourceTypes } = kafkajs;

/** Kafka's record batch limit for our topics; a capture message stays well below it. */
export const TOPIC_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;

export interface TopicDurabilitySettings {
  /** Unset: min(3, brokers in the cluster). */
  replicationFactor?: number;
  /** Unset: replicationFactor - 1, at least 1. */
  minInsyncReplicas?: number;
  /** Refuse (TopicDurabilityError) instead of warning when an existing topic is below the target. */
  requireDurability?: boolean;
}

export interface DurabilityTarget {
  replicationFactor: number;
  minInsyncReplicas: number;
}

/** What an existing topic falls short of; the capture logs it, or refuses to start with it. */
export interface DurabilityShortfall {
  topic: string;
  actual: { replicationFactor: number; minInsyncReplicas: number; uncleanLeaderElection: boolean };
  configured: DurabilityTarget;
  /** Operator commands that bring the topic up to the target. */
  fix: string;
}

/** Topics that do not have the durability configured; retrying cannot fix it, so it maps to exit 3. */
export class TopicDurabilityError extends DiffrelayError {
  override name = "TopicDurabilityError";

  constructor(message: string) {
    super("setup", message);
  }
}

/**
 * acks=all waits only for the replicas currently in sync, so a topic's durability is its replication factor
 * and min.insync.replicas, never the producer's acks alone. RF - 1 keeps producing while one broker is away.
 */
export function durabilityTarget(settings: TopicDurabilitySettings, brokerCount: number): DurabilityTarget {
  const replicationFactor = settings.replicationFactor ?? Math.max(1, Math.min(3, brokerCount));
  const minInsyncReplicas = settings.minInsyncReplicas ?? Math.max(1, replicationFactor - 1);
  if (replicationFactor > brokerCount) {
    throw new TopicDurabilityError(
      `kafka.replicationFactor is ${replicationFactor} but the Kafka cluster has ${brokerCount} broker(s): ` +
        "add brokers or lower --kafka-replication-factor",
    );
  }
  if (minInsyncReplicas > replicationFactor) {
    throw new TopicDurabilityError(
      `kafka.minInsyncReplicas is ${minInsyncReplicas}, above the replication factor ${replicationFactor}: ` +
        "no produce could ever succeed; lower --kafka-min-insync-replicas",
    );
  }
  return { replicationFactor, minInsyncReplicas };
}

function durabilityConfigEntries(target: DurabilityTarget) {
  return [
    { name: "min.insync.replicas", value: String(target.minInsyncReplicas) },
    // An out-of-sync replica elected leader would drop acknowledged messages: never allow it.
    { name: "unclean.leader.election.enable", value: "false" },
  ];
}

/**
 * Creates a one-partition topic with the durability target, compacted or not.
 * Returns false when it already existed: creation is atomic in Kafka's
 * controller, so of two concurrent creators exactly one gets true.
 */
export async function createSinglePartitionTopic(
  admin: Admin,
  topic: string,
  options: { compact: boolean; durability: TopicDurabilitySettings },
): Promise<boolean> {
  const { brokers } = await admin.describeCluster();
  const target = durabilityTarget(options.durability, brokers.length);
  return admin.createTopics({
    waitForLeaders: true,
    topics: [
      {
        topic,
        numPartitions: 1,
        replicationFactor: target.replicationFactor,
        configEntries: [
          ...(options.compact ? [{ name: "cleanup.policy", value: "compact" }] : []),
          ...durabilityConfigEntries(target),
        ],
      },
    ],
  });
}

/**
 * Creates the data topic (one partition: offset order is commit order) and the
 * compacted schema topic. An existing data topic with more partitions would
 * break total order, so it is refused rather than used.
 */
export async function ensureSourceTopics(
  admin: Admin,
  topics: SourceTopics,
  /** The `kafka` settings: their durability fields have these names. */
  durability: TopicDurabilitySettings,
): Promise<DurabilityShortfall[]> {
  const { brokers } = await admin.describeCluster();
  const target = durabilityTarget(durability, brokers.length);
  const existing = new Set(await admin.listTopics());
  const toCreate = [];
  if (!existing.has(topics.data)) {
    toCreate.push({
      topic: topics.data,
      numPartitions: 1,
      replicationFactor: target.replicationFactor,
      configEntries: [
        { name: "max.message.bytes", value: String(TOPIC_MAX_MESSAGE_BYTES) },
        ...durabilityConfigEntries(target),
      ],
    });
  }
  if (!existing.has(topics.schemas)) {
    toCreate.push({
      topic: topics.schemas,
      numPartitions: 1,
      replicationFactor: target.replicationFactor,
      configEntries: [
        { name: "cleanup.policy", value: "compact" },
        { name: "max.message.bytes", value: String(TOPIC_MAX_MESSAGE_BYTES) },
        ...durabilityConfigEntries(target),
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
  const shortfalls = await durabilityShortfalls(admin, [topics.data, topics.schemas], target, brokers);
  if (shortfalls.length > 0 && durability.requireDurability) {
    throw new TopicDurabilityError(
      `${shortfalls.map(describeShortfall).join("\n")}\n` +
        "kafka.requireDurability is set, so the capture does not start on these topics.",
    );
  }
  return shortfalls;
}

/** Existing topics below the target: fewer replicas, a lower min.insync.replicas, or unclean election on. */
export async function durabilityShortfalls(
  admin: Admin,
  topicNames: string[],
  target: DurabilityTarget,
  brokers: { host: string; port: number }[] = [],
): Promise<DurabilityShortfall[]> {
  const metadata = await admin.fetchTopicMetadata({ topics: topicNames });
  const configs = await admin.describeConfigs({
    includeSynonyms: false,
    resources: topicNames.map((name) => ({
      type: ConfigResourceTypes.TOPIC,
      name,
      configNames: ["min.insync.replicas", "unclean.leader.election.enable"],
    })),
  });
  const bootstrap = brokers[0] ? `${brokers[0].host}:${brokers[0].port}` : "<broker>";
  const out: DurabilityShortfall[] = [];
  for (const topic of topicNames) {
    const partitions = metadata.topics.find((t) => t.name === topic)?.partitions ?? [];
    const replicationFactor = Math.min(...partitions.map((p) => p.replicas.length));
    const entries = configs.resources.find((r) => r.resourceName === topic)?.configEntries ?? [];
    const value = (name: string) => entries.find((e) => e.configName === name)?.configValue;
    const actual = {
      replicationFactor,
      minInsyncReplicas: Number(value("min.insync.replicas") ?? "1"),
      uncleanLeaderElection: value("unclean.leader.election.enable") === "true",
    };
    if (
      actual.replicationFactor >= target.replicationFactor &&
      actual.minInsyncReplicas >= target.minInsyncReplicas &&
      !actual.uncleanLeaderElection
    ) {
      continue;
    }
    const fixes = [];
    if (actual.minInsyncReplicas < target.minInsyncReplicas || actual.uncleanLeaderElection) {
      fixes.push(
        `kafka-configs.sh --bootstrap-server ${bootstrap} --alter --entity-type topics --entity-name ${topic} ` +
          `--add-config min.insync.replicas=${target.minInsyncReplicas},unclean.leader.election.enable=false`,
      );
    }
    if (actual.replicationFactor < target.replicationFactor) {
      fixes.push(
        `kafka-reassign-partitions.sh --bootstrap-server ${bootstrap} --execute --reassignment-json-file plan.json ` +
          `with plan.json listing ${target.replicationFactor} broker ids as "replicas" of ${topic} partition 0`,
      );
    }
    out.push({ topic, actual, configured: target, fix: fixes.join("; then ") });
  }
  return out;
}

export function describeShortfall(s: DurabilityShortfall): string {
  const { actual: a, configured: c } = s;
  return (
    `topic ${s.topic} has replication factor ${a.replicationFactor}, min.insync.replicas ${a.minInsyncReplicas}` +
    `${a.uncleanLeaderElection ? ", unclean.leader.election.enable=true" : ""}; configured: replication factor ` +
    `${c.replicationFactor}, min.insync.replicas ${c.minInsyncReplicas}, no unclean leader election. ` +
    "Acknowledged changes can be lost when a broker fails. " +
    `Fix: ${s.fix} (or set --kafka-replication-factor / --kafka-min-insync-replicas to what the topic has).`
  );
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
