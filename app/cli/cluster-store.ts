import { ClusterStore } from "../../operations/cluster/index.js";
import { requireSetting } from "../../src/config/config-loader.js";
import type { DiffrelayConfig } from "../../src/config/config-schema.js";
import { createKafka } from "../../src/kafka/kafka-client.js";
import type { Logger } from "../../src/observability/logger.js";
import { requireClusterName } from "./cluster-members.js";

/** The cluster store a command (switchover, list) reads and writes. */
export function clusterStoreOf(
  config: DiffrelayConfig,
  logger: Logger,
): { store: ClusterStore; cluster: string } {
  const cluster = requireClusterName(config.cluster);
  const kafka = createKafka(requireSetting(config.kafka, "kafka.brokers"), logger);
  return {
    cluster,
    store: new ClusterStore({
      kafka,
      logger,
      topicPrefix: config.topicPrefix,
      cluster,
      durability: config.kafka ?? {},
    }),
  };
}
