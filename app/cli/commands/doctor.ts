import { renderDoctorReport } from "../../../operations/doctor/doctor-report.js";
import { runDoctor } from "../../../operations/doctor/doctor-runner.js";
import { ConfigError } from "../../../src/config/config-error.js";
import { postgresClientConfig } from "../../../src/config/postgres-connection.js";
import { EXIT } from "../../../src/errors/exit-codes.js";
import { createKafka } from "../../../src/kafka/kafka-client.js";
import { sourceTopics } from "../../../src/kafka/topic-names.js";
import { createLogger } from "../../../src/observability/logger.js";
import type { Command } from "../command.js";
import {
  KAFKA_CONNECTION,
  KAFKA_DURABILITY,
  PUBLICATION,
  PUBLISHED_TABLES,
  SOURCE_CONNECTION,
  STANDBY_CONNECTION,
  TOPIC_NAME,
} from "../setting-groups.js";
import { standbyTargets } from "../standby-targets.js";
import { topicDatabase } from "../topic-database.js";

/**
 * diffrelay doctor: checks a configuration against the real source, Kafka and
 * standbys before anything runs on it, one line per check. Checks only what is
 * configured: a capture host's config checks source and Kafka, an applier's
 * Kafka and its standby. Exit 0 when nothing failed, 3 when something did.
 */
export const doctorCommand: Command = {
  summary: "check a configuration against the real servers: one line per check (ok, warn, fail) with the fix",
  settings: [
    ...SOURCE_CONNECTION,
    ...STANDBY_CONNECTION,
    "standbys",
    ...KAFKA_CONNECTION,
    ...KAFKA_DURABILITY,
    ...TOPIC_NAME,
    ...PUBLICATION,
    ...PUBLISHED_TABLES,
    "capture.maxMessageBytes",
    "capture.zeroLoss",
    "logLevel",
  ],
  flags: { json: { type: "boolean", description: "print the report as one JSON document" } },
  async run({ config, flags }) {
    const standbys = standbyTargets(config);
    if (!config.source && !config.kafka && standbys.length === 0)
      throw new ConfigError(
        "config: doctor needs --source-url, --brokers and/or standbys (--standby-url or --standbys)",
      );
    // Kafka's own retry log lines would interleave with the report; its errors are in the report.
    const logger = createLogger(config.logLevel === "info" ? "fatal" : config.logLevel, "diffrelay-doctor");
    const topics = sourceTopics(config, topicDatabase(config));
    const report = await runDoctor({
      topics,
      source: config.source
        ? {
            config: postgresClientConfig(config.source.url, config.source.tls),
            slot: config.capture.slot,
            tables: config.capture.tables,
            schemas: config.capture.schemas,
            identity: config.capture.identity,
            zeroLoss: config.capture.zeroLoss,
          }
        : null,
      kafka: config.kafka
        ? {
            // A few retries: an unreachable broker is a finding, not something to wait out.
            admin: createKafka(config.kafka, logger).admin({ retry: { retries: 2, maxRetryTime: 2000 } }),
            maxMessageBytes: config.capture.maxMessageBytes,
            replicationFactor: config.kafka.replicationFactor,
            minInsyncReplicas: config.kafka.minInsyncReplicas,
            ...(config.kafka.sasl ? { saslUser: config.kafka.sasl.username } : {}),
            capture: config.source !== undefined,
            standbys: standbys.map((s) => s.name),
          }
        : null,
      standbys,
    });
    console.log(flags.json === true ? JSON.stringify(report) : renderDoctorReport(report));
    return report.ok ? EXIT.ok : EXIT.setup;
  },
};
