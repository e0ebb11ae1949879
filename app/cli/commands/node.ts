import { leaseTimingsOf } from "../../../operations/lease/index.js";
import { ClusterNode } from "../../../operations/node/index.js";
import { ConfigError } from "../../../src/config/config-error.js";
import { requireSetting } from "../../../src/config/config-loader.js";
import { createKafka } from "../../../src/kafka/kafka-client.js";
import { createLogger } from "../../../src/observability/logger.js";
import { parseMembers, requireClusterName } from "../cluster-members.js";
import type { Command } from "../command.js";
import { runService } from "../service-runner.js";
import {
  CLUSTER,
  KAFKA_CONNECTION,
  KAFKA_DURABILITY,
  METRICS_SERVER,
  PUBLICATION,
  PUBLISHED_TABLES,
} from "../setting-groups.js";

/**
 * diffrelay node --cluster NAME --node-name N --database-url URL --members a=http://..,b=http://..
 * One per database server: the capture while the cluster names it primary, the
 * applier otherwise, and its part of every switchover. Serves /primary and /replica.
 */
export const nodeCommand: Command = {
  summary:
    "run one HA cluster node beside its database: primary (capture) or standby (apply), by the cluster state",
  settings: [
    ...CLUSTER,
    "cluster.initialPrimary",
    "node.name",
    "node.url",
    "node.databaseUrl",
    "node.databaseAddress",
    "node.peerUser",
    "node.peerPassword",
    "node.manualRejoin",
    "node.leaseTtlMs",
    "node.leaseRenewMs",
    "node.failoverPriority",
    "node.manualFailover",
    "standby.tls.caFile",
    ...KAFKA_CONNECTION,
    ...KAFKA_DURABILITY,
    "topicPrefix",
    "topic",
    "epoch",
    ...PUBLICATION,
    ...PUBLISHED_TABLES,
    "capture.compression",
    "capture.maxMessageBytes",
    "capture.lingerMs",
    "capture.heartbeatIntervalMs",
    "capture.zeroLoss",
    "apply.maxRowsPerTransaction",
    "apply.maxGroupMs",
    "apply.onDrift",
    "seed.parallel",
    "seed.rangeRows",
    ...METRICS_SERVER,
    "stallAfter",
    "stopTimeoutMs",
    "logLevel",
  ],
  required: ["cluster.name", "node.name", "node.databaseUrl", "kafka.brokers"],
  async run({ config }) {
    const cluster = requireClusterName(config.cluster);
    const name = requireSetting(config.node?.name, "node.name");
    const databaseUrl = requireSetting(config.node?.databaseUrl, "node.databaseUrl");
    const kafkaSettings = requireSetting(config.kafka, "kafka.brokers");
    if (!config.node?.url && config.metrics.port === 0) {
      throw new ConfigError(
        "config: a node needs --node-url (its HTTP API as the others reach it) or a fixed --metrics-port",
      );
    }
    const apiUrl = config.node?.url ?? `http://${config.metrics.host}:${config.metrics.port}`;
    const members = parseMembers(config.cluster?.members ?? []).filter((m) => m.name !== name);
    const logger = createLogger(config.logLevel, "diffrelay-node").child({ node: name });
    const node = new ClusterNode({
      config,
      kafka: createKafka(kafkaSettings, logger),
      logger,
      cluster,
      name,
      apiUrl,
      databaseUrl,
      members,
      initialPrimary: config.cluster?.initialPrimary,
      databaseAddress: config.node?.databaseAddress,
      peerCredentials: { user: config.node?.peerUser, password: config.node?.peerPassword },
      autoRejoin: config.node?.manualRejoin !== true,
      lease: leaseTimingsOf(config.node),
      autoFailover: config.node?.manualFailover !== true,
      failoverPriority: config.node?.failoverPriority ?? 1,
    });
    return runService({
      service: node,
      logger,
      stopTimeoutMs: config.stopTimeoutMs,
      metrics: {
        ...config.metrics,
        registry: { contentType: node.registry.contentType, metrics: () => node.registry.metrics() },
      },
      checks: {
        "/primary": () => ({ healthy: node.isWritablePrimary(), ...node.status() }),
        "/replica": (query) => {
          const lag = query.get("lag");
          const maxLagMs = lag === null || lag === "" ? undefined : Number(lag);
          return { healthy: node.isReplicaWithin(maxLagMs), ...node.status() };
        },
      },
    });
  },
};
