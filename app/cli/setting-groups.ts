/**
 * Settings that commands read together, as paths of src/config/settings.ts.
 * Every command that talks to Kafka takes all of its connection settings, and
 * so on: a command's list is built from these, plus what only it reads.
 */
export const SOURCE_CONNECTION = ["source.url", "source.tls.caFile"] as const;

export const STANDBY_CONNECTION = ["standby.name", "standby.url", "standby.tls.caFile"] as const;

export const KAFKA_CONNECTION = [
  "kafka.brokers",
  "kafka.clientId",
  "kafka.tls.enabled",
  "kafka.tls.caFile",
  "kafka.sasl.mechanism",
  "kafka.sasl.username",
  "kafka.sasl.password",
] as const;

/** How the capture creates and checks its topics (promote creates the next epoch's). */
export const KAFKA_DURABILITY = [
  "kafka.replicationFactor",
  "kafka.minInsyncReplicas",
  "kafka.requireDurability",
] as const;

/** How the data topic's name is derived (with the source database from a URL). */
export const TOPIC_NAME = ["topicPrefix", "topic", "epoch"] as const;

/** What the capture publishes: also what seed, verify, promote and doctor look at. */
export const PUBLICATION = ["capture.publication", "capture.slot"] as const;

export const PUBLISHED_TABLES = ["capture.tables", "capture.schemas"] as const;

export const METRICS_SERVER = ["metrics.host", "metrics.port"] as const;

/** Which HA cluster a command acts on, and its other nodes. */
export const CLUSTER = ["cluster.name", "cluster.members"] as const;
