import { ApplyService, createApplyMetrics } from "../../../connectors/postgres-standby/index.js";
import { requireSetting } from "../../../src/config/config-loader.js";
import { createKafka } from "../../../src/kafka/kafka-client.js";
import { sourceTopics } from "../../../src/kafka/topic-names.js";
import { createLogger } from "../../../src/observability/logger.js";
import type { Command } from "../command.js";
import { runService } from "../service-runner.js";
import { KAFKA_CONNECTION, METRICS_SERVER, STANDBY_CONNECTION, TOPIC_NAME } from "../setting-groups.js";
import { topicDatabase } from "../topic-database.js";

export const applyCommand: Command = {
  summary: "consume the source's topic and apply it to one standby, exactly once",
  settings: [
    ...STANDBY_CONNECTION,
    "source.url",
    ...KAFKA_CONNECTION,
    ...TOPIC_NAME,
    "apply.maxRowsPerTransaction",
    "apply.maxGroupMs",
    "apply.maxRowsPerStatement",
    "apply.onDrift",
    "apply.deadLetterTopic",
    ...METRICS_SERVER,
    "stallAfter",
    "stopTimeoutMs",
    "logLevel",
  ],
  required: ["standby.name", "standby.url", "kafka.brokers"],
  async run({ config }) {
    const standbyName = requireSetting(config.standby?.name, "standby.name");
    const standbyUrl = requireSetting(config.standby?.url, "standby.url");
    const kafkaSettings = requireSetting(config.kafka, "kafka.brokers");
    const logger = createLogger(config.logLevel, "diffrelay-apply").child({ standby: standbyName });
    const metrics = createApplyMetrics(standbyName);
    const service = new ApplyService({
      config,
      standbyName,
      standbyUrl,
      topics: sourceTopics(config, topicDatabase(config)),
      kafka: createKafka(kafkaSettings, logger),
      logger,
      metrics,
    });
    return runService({
      service,
      logger,
      metrics: { ...config.metrics, registry: metrics.registry },
      stopTimeoutMs: config.stopTimeoutMs,
    });
  },
};
