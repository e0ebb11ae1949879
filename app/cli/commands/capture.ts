import { CaptureService, createCaptureMetrics } from "../../../connectors/postgres-source/index.js";
import { requireSetting } from "../../../src/config/config-loader.js";
import { createKafka } from "../../../src/kafka/kafka-client.js";
import { sourceTopics } from "../../../src/kafka/topic-names.js";
import { createLogger } from "../../../src/observability/logger.js";
import type { Command } from "../command.js";
import { runService } from "../service-runner.js";
import {
  KAFKA_CONNECTION,
  KAFKA_DURABILITY,
  METRICS_SERVER,
  PUBLICATION,
  PUBLISHED_TABLES,
  SOURCE_CONNECTION,
  TOPIC_NAME,
} from "../setting-groups.js";
import { topicDatabase } from "../topic-database.js";

export const captureCommand: Command = {
  summary: "read the source's logical replication slot and publish row diffs to Kafka",
  settings: [
    ...SOURCE_CONNECTION,
    ...KAFKA_CONNECTION,
    ...KAFKA_DURABILITY,
    ...TOPIC_NAME,
    ...PUBLICATION,
    ...PUBLISHED_TABLES,
    "capture.compression",
    "capture.maxMessageBytes",
    "capture.maxValueBytes",
    "capture.lingerMs",
    "capture.maxPendingBytes",
    "capture.heartbeatIntervalMs",
    "capture.zeroLoss",
    ...METRICS_SERVER,
    "stallAfter",
    "stopTimeoutMs",
    "logLevel",
  ],
  required: ["source.url", "kafka.brokers"],
  async run({ config }) {
    const source = requireSetting(config.source, "source.url");
    const kafkaSettings = requireSetting(config.kafka, "kafka.brokers");
    const logger = createLogger(config.logLevel, "diffrelay-capture");
    const metrics = createCaptureMetrics();
    const service = new CaptureService({
      config: { ...config, source },
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
