import {
  catchUpWithCluster,
  type RejoinReport,
  rejoinAsStandby,
  renderRejoinReport,
} from "../../../operations/rejoin/index.js";
import { ConfigError } from "../../../src/config/config-error.js";
import { requireSetting } from "../../../src/config/config-loader.js";
import { postgresClientConfig } from "../../../src/config/postgres-connection.js";
import { EXIT } from "../../../src/errors/exit-codes.js";
import { createKafka } from "../../../src/kafka/kafka-client.js";
import { sourceTopics } from "../../../src/kafka/topic-names.js";
import { createLogger } from "../../../src/observability/logger.js";
import { clusterStoreOf } from "../cluster-store.js";
import type { Command } from "../command.js";
import {
  KAFKA_CONNECTION,
  PUBLICATION,
  SOURCE_CONNECTION,
  STANDBY_CONNECTION,
  TOPIC_NAME,
} from "../setting-groups.js";
import { topicDatabase } from "../topic-database.js";

const FLAGS = {
  "old-epoch": {
    type: "string",
    value: "n",
    description: "the epoch whose primary the rejoining database was (default: --epoch minus 1)",
  },
  "report-file": {
    type: "string",
    value: "path",
    description: "also write the report (JSON) here, before anything is repaired",
  },
  json: { type: "boolean", description: "print the report as one JSON document" },
} as const;

/**
 * diffrelay rejoin --standby-url OLD_PRIMARY --standby-name NAME --source-url NEW_PRIMARY --epoch N
 * The old primary (the standby-to-be) stops accepting client writes, reports
 * what it committed that never reached the new primary, is made an exact copy
 * of it, and is left positioned on the new primary's topic for its applier.
 * With --cluster, the epochs come from the cluster topic (--epoch is not
 * used): the old primary follows every role change since the epoch it was
 * primary of, as its node's automatic rejoin does.
 */
export const rejoinCommand: Command = {
  summary:
    "make a failed old primary an exact standby of the new one: report its unpublished transactions, undo them (or re-seed), follow the new topic",
  settings: [
    ...SOURCE_CONNECTION,
    ...STANDBY_CONNECTION,
    ...KAFKA_CONNECTION,
    ...TOPIC_NAME,
    ...PUBLICATION,
    "seed.parallel",
    "seed.rangeRows",
    "cluster.name",
    "logLevel",
  ],
  required: ["source.url", "standby.name", "standby.url", "kafka.brokers"],
  flags: FLAGS,
  async run({ config, flags }) {
    const source = requireSetting(config.source, "source.url");
    const standbyName = requireSetting(config.standby?.name, "standby.name");
    const standbyUrl = requireSetting(config.standby?.url, "standby.url");
    const kafkaSettings = requireSetting(config.kafka, "kafka.brokers");
    const logger = createLogger(config.logLevel, "diffrelay-rejoin").child({ standby: standbyName });
    if (config.cluster?.name) {
      const { store, cluster } = clusterStoreOf(config, logger);
      let report: RejoinReport;
      let epoch: number;
      try {
        const caughtUp = await catchUpWithCluster({
          view: await store.read(),
          name: standbyName,
          config,
          kafka: createKafka(kafkaSettings, logger),
          logger,
          databaseUrl: standbyUrl,
          stalePrimary: true,
          primaryDatabase: async () => ({
            url: source.url,
            config: postgresClientConfig(source.url, source.tls),
          }),
        });
        report = caughtUp.report as RejoinReport;
        epoch = caughtUp.target.epoch;
      } finally {
        await store.close();
      }
      console.log(flags.json ? JSON.stringify(report) : renderRejoinReport(report));
      console.log(
        `next, start its node again (diffrelay node --cluster ${cluster} --node-name ${standbyName} …): it follows epoch ${epoch} as a standby`,
      );
      return EXIT.ok;
    }
    const oldEpoch = flags["old-epoch"] === undefined ? config.epoch - 1 : Number(flags["old-epoch"]);
    if (!Number.isInteger(oldEpoch) || oldEpoch < 0 || oldEpoch >= config.epoch) {
      throw new ConfigError(
        `config: --old-epoch must be a whole number below --epoch (${config.epoch}), got ${String(flags["old-epoch"] ?? oldEpoch)}: --epoch is the new primary's epoch (or give --cluster)`,
      );
    }
    const database = topicDatabase(config);
    const report = await rejoinAsStandby({
      config,
      oldPrimaryUrl: standbyUrl,
      oldPrimaryConfig: postgresClientConfig(standbyUrl, config.standby?.tls),
      standbyName,
      newPrimaryUrl: source.url,
      newPrimaryConfig: postgresClientConfig(source.url, source.tls),
      kafka: createKafka(kafkaSettings, logger),
      logger,
      oldTopics: sourceTopics({ ...config, epoch: oldEpoch }, database),
      newTopics: sourceTopics(config, database),
      epoch: config.epoch,
      slot: config.capture.slot,
      publication: config.capture.publication,
      seed: { parallel: config.seed.parallel, rangeRows: config.seed.rangeRows },
      reportFile: typeof flags["report-file"] === "string" ? flags["report-file"] : undefined,
    });
    console.log(flags.json ? JSON.stringify(report) : renderRejoinReport(report));
    console.log(
      `next, start: diffrelay apply --standby-name ${standbyName} --epoch ${config.epoch}${config.topic ? ` --topic ${config.topic}` : ""}`,
    );
    return EXIT.ok;
  },
};
