import { runSeed } from "../../../operations/seed/seed-runner.js";
import { requireSetting } from "../../../src/config/config-loader.js";
import { postgresClientConfig } from "../../../src/config/postgres-connection.js";
import { closeQuietly } from "../../../src/errors/close-quietly.js";
import { EXIT } from "../../../src/errors/exit-codes.js";
import { createKafka } from "../../../src/kafka/kafka-client.js";
import { sourceTopics } from "../../../src/kafka/topic-names.js";
import { createLogger } from "../../../src/observability/logger.js";
import type { Command } from "../command.js";
import {
  KAFKA_CONNECTION,
  PUBLICATION,
  SOURCE_CONNECTION,
  STANDBY_CONNECTION,
  TOPIC_NAME,
} from "../setting-groups.js";
import { topicDatabase } from "../topic-database.js";

/**
 * diffrelay seed: copies the source's published tables to a standby from one
 * exported snapshot and records the exact position after it. The standby's
 * applier must be stopped meanwhile (checked). Safe to run again: each table is
 * emptied before it is copied, and the position is written last.
 */
export const seedCommand: Command = {
  summary: "copy the published tables to a standby from one snapshot and record its exact position",
  settings: [
    ...SOURCE_CONNECTION,
    ...STANDBY_CONNECTION,
    ...KAFKA_CONNECTION,
    ...TOPIC_NAME,
    ...PUBLICATION,
    "seed.parallel",
    "seed.rangeRows",
    "logLevel",
  ],
  required: ["source.url", "standby.name", "standby.url", "kafka.brokers"],
  flags: {
    "create-schema": {
      type: "boolean",
      description:
        "create tables missing on the standby from the primary's definitions (pg_dump --schema-only)",
    },
  },
  async run({ config, flags }) {
    const source = requireSetting(config.source, "source.url");
    const standbyName = requireSetting(config.standby?.name, "standby.name");
    const standbyUrl = requireSetting(config.standby?.url, "standby.url");
    const kafkaSettings = requireSetting(config.kafka, "kafka.brokers");
    const logger = createLogger(config.logLevel, "diffrelay-seed").child({ standby: standbyName });
    const admin = createKafka(kafkaSettings, logger).admin();
    await admin.connect();
    try {
      const result = await runSeed({
        sourceUrl: source.url,
        sourceConfig: postgresClientConfig(source.url, source.tls),
        standbyUrl,
        standbyConfig: postgresClientConfig(standbyUrl, config.standby?.tls),
        standbyName,
        topics: sourceTopics(config, topicDatabase(config)),
        admin,
        publication: config.capture.publication,
        captureSlot: config.capture.slot,
        parallel: config.seed.parallel,
        rangeRows: config.seed.rangeRows,
        createSchema: flags["create-schema"] === true,
      });
      console.log(
        JSON.stringify({
          event: "seed complete",
          standby: standbyName,
          ...result,
        }),
      );
      return EXIT.ok;
    } finally {
      await closeQuietly(admin.disconnect());
    }
  },
};
