import { createCaptureMetrics } from "../../../connectors/postgres-source/capture-metrics.js";
import { CaptureService } from "../../../connectors/postgres-source/capture-service.js";
import { SourceConfigurationError } from "../../../connectors/postgres-source/source-errors.js";
import { SourceMigrationError } from "../../../connectors/postgres-source/source-migrator.js";
import { requireSetting } from "../../config/config-loader.js";
import { createKafka } from "../../kafka/kafka-client.js";
import { TopicDurabilityError } from "../../kafka/topic-admin.js";
import { sourceTopics } from "../../kafka/topic-names.js";
import { createLogger } from "../../observability/logger.js";
import type { Command } from "../command.js";
import { EXIT } from "../exit-codes.js";
import { runService } from "../service-runner.js";
import { topicDatabase } from "../topic-database.js";

export const captureCommand: Command = {
  summary: "read the source's logical replication slot and publish row diffs to Kafka",
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
      exitCodeOf: (err) =>
        err instanceof SourceConfigurationError ||
        err instanceof SourceMigrationError ||
        err instanceof TopicDurabilityError
          ? EXIT.setup
          : null,
    });
  },
};
