/**
 * Every configuration key that can be set outside the YAML file, with its
 * environment variable, its flag and what it means. Operators script against
 * these names, so they are listed once, here: the loader reads them, each
 * command's --help and the shell completions are generated from them, and
 * docs/operations.md lists them. Defaults and allowed values come from the zod
 * schema (setting-schema.ts), never from here. Which command reads which
 * setting is declared by the command (app/cli/commands/).
 */
export type SettingKind = "string" | "number" | "boolean" | "list";

export interface Setting {
  /** Dotted path in the YAML file. */
  path: string;
  env: string;
  flag: string;
  kind: SettingKind;
  /** One line for --help: what the setting means, not its default. */
  description: string;
}

function setting(path: string, env: string, flag: string, kind: SettingKind, description: string): Setting {
  return { path, env, flag, kind, description };
}

export const SETTINGS: readonly Setting[] = [
  setting(
    "source.url",
    "DIFFRELAY_SOURCE_URL",
    "source-url",
    "string",
    "the primary's URL, postgres://user:pw@host:5432/db (apply reads only its database, for the topic name)",
  ),
  setting(
    "source.tls.caFile",
    "DIFFRELAY_SOURCE_TLS_CA_FILE",
    "source-tls-ca-file",
    "string",
    "PEM CA bundle the source's server certificate must chain to",
  ),
  setting(
    "kafka.brokers",
    "DIFFRELAY_KAFKA_BROKERS",
    "brokers",
    "list",
    "Kafka bootstrap brokers, host:port,...",
  ),
  setting(
    "kafka.clientId",
    "DIFFRELAY_KAFKA_CLIENT_ID",
    "kafka-client-id",
    "string",
    "Kafka client id, shown in broker logs and quotas",
  ),
  setting("kafka.tls.enabled", "DIFFRELAY_KAFKA_TLS", "kafka-tls", "boolean", "connect to Kafka over TLS"),
  setting(
    "kafka.tls.caFile",
    "DIFFRELAY_KAFKA_TLS_CA_FILE",
    "kafka-tls-ca-file",
    "string",
    "PEM CA bundle the brokers' certificates must chain to",
  ),
  setting(
    "kafka.sasl.mechanism",
    "DIFFRELAY_KAFKA_SASL_MECHANISM",
    "kafka-sasl-mechanism",
    "string",
    "SASL mechanism",
  ),
  setting(
    "kafka.sasl.username",
    "DIFFRELAY_KAFKA_SASL_USERNAME",
    "kafka-sasl-username",
    "string",
    "SASL user name",
  ),
  setting(
    "kafka.sasl.password",
    "DIFFRELAY_KAFKA_SASL_PASSWORD",
    "kafka-sasl-password",
    "string",
    "SASL password (prefer the environment variable: flags show in ps)",
  ),
  setting(
    "kafka.replicationFactor",
    "DIFFRELAY_KAFKA_REPLICATION_FACTOR",
    "kafka-replication-factor",
    "number",
    "replication factor of the topics the capture creates (unset: min(3, brokers))",
  ),
  setting(
    "kafka.minInsyncReplicas",
    "DIFFRELAY_KAFKA_MIN_INSYNC_REPLICAS",
    "kafka-min-insync-replicas",
    "number",
    "min.insync.replicas of the topics the capture creates (unset: replication factor - 1, at least 1)",
  ),
  setting(
    "kafka.requireDurability",
    "DIFFRELAY_KAFKA_REQUIRE_DURABILITY",
    "kafka-require-durability",
    "boolean",
    "refuse to start (exit 3) when an existing topic's replication factor or min ISR is below the above",
  ),
  setting(
    "topicPrefix",
    "DIFFRELAY_TOPIC_PREFIX",
    "topic-prefix",
    "string",
    "data topic is <prefix>.<source database> unless --topic is set",
  ),
  setting(
    "topic",
    "DIFFRELAY_TOPIC",
    "topic",
    "string",
    "the data topic's name, instead of <prefix>.<database>",
  ),
  setting(
    "epoch",
    "DIFFRELAY_EPOCH",
    "epoch",
    "number",
    "source epoch, one more after each promote; from 1 on topics end in .e<epoch>",
  ),
  setting(
    "standby.name",
    "DIFFRELAY_STANDBY_NAME",
    "standby-name",
    "string",
    "the standby's name: its consumer group, metrics label and position owner",
  ),
  setting(
    "standby.url",
    "DIFFRELAY_STANDBY_URL",
    "standby-url",
    "string",
    "the standby's connection URL, as the apply role",
  ),
  setting(
    "standby.tls.caFile",
    "DIFFRELAY_STANDBY_TLS_CA_FILE",
    "standby-tls-ca-file",
    "string",
    "PEM CA bundle the standby's server certificate must chain to",
  ),
  setting(
    "capture.publication",
    "DIFFRELAY_PUBLICATION",
    "publication",
    "string",
    "publication the capture reads (created if missing)",
  ),
  setting(
    "capture.slot",
    "DIFFRELAY_SLOT",
    "slot",
    "string",
    "logical replication slot the capture streams (created if missing)",
  ),
  setting(
    "capture.tables",
    "DIFFRELAY_TABLES",
    "tables",
    "list",
    "tables to publish, schema.table,...; none (and no --schemas) means all tables",
  ),
  setting(
    "capture.schemas",
    "DIFFRELAY_SCHEMAS",
    "schemas",
    "list",
    "schemas to publish every table of (PostgreSQL 15+, superuser)",
  ),
  setting("capture.compression", "DIFFRELAY_COMPRESSION", "compression", "string", "Kafka batch compression"),
  setting(
    "capture.maxMessageBytes",
    "DIFFRELAY_MAX_MESSAGE_BYTES",
    "max-message-bytes",
    "number",
    "a Kafka message is closed at this size; larger transactions are chunked",
  ),
  setting(
    "capture.maxValueBytes",
    "DIFFRELAY_MAX_VALUE_BYTES",
    "max-value-bytes",
    "number",
    "a value with more bytes of text stops the capture (exit 7); default and most: 536870888",
  ),
  setting(
    "capture.lingerMs",
    "DIFFRELAY_LINGER_MS",
    "linger-ms",
    "number",
    "how long a transaction committed while Kafka is idle waits for more before it is sent (0: none)",
  ),
  setting(
    "capture.maxPendingBytes",
    "DIFFRELAY_MAX_PENDING_BYTES",
    "max-pending-bytes",
    "number",
    "frames waiting for Kafka before the replication socket is paused",
  ),
  setting(
    "capture.heartbeatIntervalMs",
    "DIFFRELAY_HEARTBEAT_INTERVAL_MS",
    "heartbeat-interval-ms",
    "number",
    "interval of heartbeats and sequence positions on the topic",
  ),
  setting(
    "capture.zeroLoss",
    "DIFFRELAY_ZERO_LOSS",
    "zero-loss",
    "boolean",
    "commits on the source return only once their changes are durable in Kafka (sets or checks synchronous_standby_names)",
  ),
  setting(
    "apply.maxRowsPerTransaction",
    "DIFFRELAY_APPLY_MAX_ROWS",
    "apply-max-rows",
    "number",
    "rows at most in one standby transaction grouping source transactions",
  ),
  setting(
    "apply.maxGroupMs",
    "DIFFRELAY_APPLY_MAX_GROUP_MS",
    "apply-max-group-ms",
    "number",
    "how long such a group may stay open",
  ),
  setting(
    "apply.maxRowsPerStatement",
    "DIFFRELAY_APPLY_MAX_ROWS_PER_STATEMENT",
    "apply-max-rows-per-statement",
    "number",
    "rows at most in one batched statement",
  ),
  setting(
    "apply.onDrift",
    "DIFFRELAY_ON_DRIFT",
    "on-drift",
    "string",
    "on drift (the standby is not a copy): stop, or log and go on",
  ),
  setting(
    "apply.deadLetterTopic",
    "DIFFRELAY_DEAD_LETTER_TOPIC",
    "dead-letter-topic",
    "string",
    "send messages that do not decode here instead of stopping",
  ),
  setting(
    "seed.parallel",
    "DIFFRELAY_SEED_PARALLEL",
    "parallel",
    "number",
    "tables (or ranges of large tables) copied at once",
  ),
  setting(
    "seed.rangeRows",
    "DIFFRELAY_SEED_RANGE_ROWS",
    "seed-range-rows",
    "number",
    "tables estimated above this many rows are copied in ctid ranges of this size",
  ),
  setting(
    "standbys",
    "DIFFRELAY_STANDBYS",
    "standbys",
    "list",
    "every standby of the deployment, name=url,...",
  ),
  setting(
    "cluster.name",
    "DIFFRELAY_CLUSTER",
    "cluster",
    "string",
    "the HA cluster's name (its state topic)",
  ),
  setting(
    "cluster.members",
    "DIFFRELAY_CLUSTER_MEMBERS",
    "members",
    "list",
    "the cluster's other nodes, name=http://host:port (their HTTP API),...",
  ),
  setting(
    "cluster.initialPrimary",
    "DIFFRELAY_CLUSTER_INITIAL_PRIMARY",
    "initial-primary",
    "string",
    "the node that is the first primary when the cluster has no state yet",
  ),
  setting("node.name", "DIFFRELAY_NODE_NAME", "node-name", "string", "this node's name in the cluster"),
  setting(
    "node.url",
    "DIFFRELAY_NODE_URL",
    "node-url",
    "string",
    "this node's HTTP API as the other nodes and commands reach it; unset: http://<metrics-host>:<port>",
  ),
  setting(
    "node.databaseUrl",
    "DIFFRELAY_NODE_DATABASE_URL",
    "database-url",
    "string",
    "this node's database, postgres://user:pw@host:5432/db (the source while primary, the standby otherwise)",
  ),
  setting(
    "node.databaseAddress",
    "DIFFRELAY_NODE_DATABASE_ADDRESS",
    "database-address",
    "string",
    "this node's database as the other nodes reach it, postgres://host:5432/db without user and password (reported in the cluster topic; a rejoining old primary connects to the new primary's with its own user); unset: --database-url without them",
  ),
  setting(
    "node.peerUser",
    "DIFFRELAY_NODE_PEER_USER",
    "peer-user",
    "string",
    "the user this node connects to another node's database as (a rejoining old primary, to the new primary's); unset: the user of --database-url",
  ),
  setting(
    "node.peerPassword",
    "DIFFRELAY_NODE_PEER_PASSWORD",
    "peer-password",
    "string",
    "that user's password (prefer the environment variable); unset: the password of --database-url",
  ),
  setting(
    "node.manualRejoin",
    "DIFFRELAY_NODE_MANUAL_REJOIN",
    "manual-rejoin",
    "boolean",
    "a stale primary's node stays fenced for `diffrelay rejoin` instead of rejoining as a standby by itself",
  ),
  setting(
    "node.leaseTtlMs",
    "DIFFRELAY_LEASE_TTL_MS",
    "lease-ttl-ms",
    "number",
    "the primary's lease: the standbys elect a new primary when they have seen no renewal for this long (default 5000); the primary fences its database by itself after 70% of it without a renewal read back",
  ),
  setting(
    "node.leaseRenewMs",
    "DIFFRELAY_LEASE_RENEW_MS",
    "lease-renew-ms",
    "number",
    "how often the primary renews its lease through the cluster topic (default 1000; at most a third of the TTL)",
  ),
  setting(
    "node.failoverPriority",
    "DIFFRELAY_FAILOVER_PRIORITY",
    "failover-priority",
    "number",
    "automatic failover: 0 never makes this node the new primary; candidates go by higher priority, then the most applied (default 1)",
  ),
  setting(
    "node.manualFailover",
    "DIFFRELAY_MANUAL_FAILOVER",
    "manual-failover",
    "boolean",
    "this node never starts an automatic failover (it still renews its lease as a primary, and `diffrelay failover` works)",
  ),
  setting(
    "metrics.host",
    "DIFFRELAY_METRICS_HOST",
    "metrics-host",
    "string",
    "address of the /metrics, /healthz and /status server",
  ),
  setting(
    "metrics.port",
    "DIFFRELAY_METRICS_PORT",
    "metrics-port",
    "number",
    "port of that server; 0 picks a free one (logged at start)",
  ),
  setting(
    "stallAfter",
    "DIFFRELAY_STALL_AFTER",
    "stall-after",
    "number",
    "identical failures in a row at one position before the process reports itself stalled",
  ),
  setting(
    "stopTimeoutMs",
    "DIFFRELAY_STOP_TIMEOUT_MS",
    "stop-timeout-ms",
    "number",
    "after SIGTERM/SIGINT, how long stopping may take before the process exits anyway (exit 11)",
  ),
  setting("logLevel", "DIFFRELAY_LOG_LEVEL", "log-level", "string", "log level"),
];
