/**
 * Every configuration key that can be set outside the YAML file, with its
 * environment variable and its flag. Operators script against these names, so
 * they are listed once, here, and documented in docs/operations.md.
 */
export type SettingKind = "string" | "number" | "boolean" | "list";

export interface Setting {
  /** Dotted path in the YAML file. */
  path: string;
  env: string;
  flag: string;
  kind: SettingKind;
}

function setting(path: string, env: string, flag: string, kind: SettingKind = "string"): Setting {
  return { path, env, flag, kind };
}

export const SETTINGS: readonly Setting[] = [
  setting("source.url", "DIFFRELAY_SOURCE_URL", "source-url"),
  setting("source.tls.caFile", "DIFFRELAY_SOURCE_TLS_CA_FILE", "source-tls-ca-file"),
  setting("kafka.brokers", "DIFFRELAY_KAFKA_BROKERS", "brokers", "list"),
  setting("kafka.clientId", "DIFFRELAY_KAFKA_CLIENT_ID", "kafka-client-id"),
  setting("kafka.tls.enabled", "DIFFRELAY_KAFKA_TLS", "kafka-tls", "boolean"),
  setting("kafka.tls.caFile", "DIFFRELAY_KAFKA_TLS_CA_FILE", "kafka-tls-ca-file"),
  setting("kafka.sasl.mechanism", "DIFFRELAY_KAFKA_SASL_MECHANISM", "kafka-sasl-mechanism"),
  setting("kafka.sasl.username", "DIFFRELAY_KAFKA_SASL_USERNAME", "kafka-sasl-username"),
  setting("kafka.sasl.password", "DIFFRELAY_KAFKA_SASL_PASSWORD", "kafka-sasl-password"),
  setting(
    "kafka.replicationFactor",
    "DIFFRELAY_KAFKA_REPLICATION_FACTOR",
    "kafka-replication-factor",
    "number",
  ),
  setting(
    "kafka.minInsyncReplicas",
    "DIFFRELAY_KAFKA_MIN_INSYNC_REPLICAS",
    "kafka-min-insync-replicas",
    "number",
  ),
  setting(
    "kafka.requireDurability",
    "DIFFRELAY_KAFKA_REQUIRE_DURABILITY",
    "kafka-require-durability",
    "boolean",
  ),
  setting("topicPrefix", "DIFFRELAY_TOPIC_PREFIX", "topic-prefix"),
  setting("topic", "DIFFRELAY_TOPIC", "topic"),
  setting("epoch", "DIFFRELAY_EPOCH", "epoch", "number"),
  setting("standby.name", "DIFFRELAY_STANDBY_NAME", "standby-name"),
  setting("standby.url", "DIFFRELAY_STANDBY_URL", "standby-url"),
  setting("standby.tls.caFile", "DIFFRELAY_STANDBY_TLS_CA_FILE", "standby-tls-ca-file"),
  setting("capture.publication", "DIFFRELAY_PUBLICATION", "publication"),
  setting("capture.slot", "DIFFRELAY_SLOT", "slot"),
  setting("capture.tables", "DIFFRELAY_TABLES", "tables", "list"),
  setting("capture.schemas", "DIFFRELAY_SCHEMAS", "schemas", "list"),
  setting("capture.compression", "DIFFRELAY_COMPRESSION", "compression"),
  setting("capture.maxMessageBytes", "DIFFRELAY_MAX_MESSAGE_BYTES", "max-message-bytes", "number"),
  setting("capture.lingerMs", "DIFFRELAY_LINGER_MS", "linger-ms", "number"),
  setting("capture.maxPendingBytes", "DIFFRELAY_MAX_PENDING_BYTES", "max-pending-bytes", "number"),
  setting(
    "capture.heartbeatIntervalMs",
    "DIFFRELAY_HEARTBEAT_INTERVAL_MS",
    "heartbeat-interval-ms",
    "number",
  ),
  setting("apply.maxRowsPerTransaction", "DIFFRELAY_APPLY_MAX_ROWS", "apply-max-rows", "number"),
  setting("apply.maxGroupMs", "DIFFRELAY_APPLY_MAX_GROUP_MS", "apply-max-group-ms", "number"),
  setting(
    "apply.maxRowsPerStatement",
    "DIFFRELAY_APPLY_MAX_ROWS_PER_STATEMENT",
    "apply-max-rows-per-statement",
    "number",
  ),
  setting("apply.onDrift", "DIFFRELAY_ON_DRIFT", "on-drift"),
  setting("apply.deadLetterTopic", "DIFFRELAY_DEAD_LETTER_TOPIC", "dead-letter-topic"),
  setting("seed.parallel", "DIFFRELAY_SEED_PARALLEL", "parallel", "number"),
  setting("seed.rangeRows", "DIFFRELAY_SEED_RANGE_ROWS", "seed-range-rows", "number"),
  setting("standbys", "DIFFRELAY_STANDBYS", "standbys", "list"),
  setting("metrics.host", "DIFFRELAY_METRICS_HOST", "metrics-host"),
  setting("metrics.port", "DIFFRELAY_METRICS_PORT", "metrics-port", "number"),
  setting("logLevel", "DIFFRELAY_LOG_LEVEL", "log-level"),
];
