import type { DiffrelayConfig } from "../config/config-schema.js";

export interface SourceTopics {
  data: string;
  schemas: string;
}

/**
 * One data topic per source database and epoch, plus its compacted schema
 * topic: `<topicPrefix>.<database>` (or the configured `topic`), with `.e<n>`
 * from epoch 1 on.
 */
export function sourceTopics(
  config: Pick<DiffrelayConfig, "topic" | "topicPrefix" | "epoch">,
  databaseName: string,
): SourceTopics {
  const base = config.topic ?? `${config.topicPrefix}.${databaseName.replace(/[^A-Za-z0-9._-]/g, "_")}`;
  const data = config.epoch > 0 ? `${base}.e${config.epoch}` : base;
  return { data, schemas: `${data}.schemas` };
}

/**
 * The consumer group of a standby's applier of one data topic; its members tell
 * whether it runs. The topic is part of it because standby (and node) names are
 * unique only within a cluster: two clusters on one Kafka may both have an "a".
 * A standby name holds no dot, so the first dot ends it.
 */
export function applierGroupId(standbyName: string, dataTopic: string): string {
  return `diffrelay-apply-${standbyName}.${dataTopic}`;
}

/** The data topics of a cluster's epoch: `<topicPrefix>.<cluster>` (or the configured `topic`), `.e<n>` from epoch 1 on. */
export function clusterDataTopics(
  config: Pick<DiffrelayConfig, "topic" | "topicPrefix">,
  cluster: string,
  epoch: number,
): SourceTopics {
  return sourceTopics(
    { topic: config.topic ?? `${config.topicPrefix}.${cluster}`, topicPrefix: config.topicPrefix, epoch },
    "",
  );
}

/** The compacted topic that holds a cluster's state records and its nodes' reports. */
export function clusterStateTopic(topicPrefix: string, cluster: string): string {
  return `${topicPrefix}.cluster.${cluster}`;
}

/**
 * The topic whose creation claims epoch `epoch` of a cluster. Topic creation is
 * atomic in Kafka's controller: of two claimants of one epoch exactly one creates it.
 */
export function epochClaimTopic(topicPrefix: string, cluster: string, epoch: number): string {
  return `${clusterStateTopic(topicPrefix, cluster)}.claim.e${epoch}`;
}

/** The epoch a claim topic of this cluster claims, or null for any other topic. */
export function claimedEpoch(topicPrefix: string, cluster: string, topic: string): number | null {
  const prefix = `${clusterStateTopic(topicPrefix, cluster)}.claim.e`;
  if (!topic.startsWith(prefix)) return null;
  const rest = topic.slice(prefix.length);
  return /^(0|[1-9][0-9]*)$/.test(rest) ? Number(rest) : null;
}
