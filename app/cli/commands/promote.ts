import { promote, type StandbyTarget } from "../../../operations/promote/promote-runner.js";
import { ConfigError } from "../../../src/config/config-error.js";
import { requireSetting } from "../../../src/config/config-loader.js";
import { EXIT } from "../../../src/errors/exit-codes.js";
import { createKafka } from "../../../src/kafka/kafka-client.js";
import { sourceTopics } from "../../../src/kafka/topic-names.js";
import { createLogger } from "../../../src/observability/logger.js";
import { redact } from "../../../src/observability/redact.js";
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
import { topicDatabase } from "../topic-database.js";

/**
 * diffrelay promote --standby-name NAME --standby-url URL [--source-url OLD] [--standbys a=url,b=url]
 * Makes one standby the new source; the other standbys (from --standbys) are
 * re-pointed to follow it. Every applier must be stopped: promote drains them.
 */
export const promoteCommand: Command = {
  summary:
    "fail over (or switch over) to a standby: drain, advance sequences, make it the source, re-point the others",
  settings: [
    ...SOURCE_CONNECTION,
    ...STANDBY_CONNECTION,
    "standbys",
    ...KAFKA_CONNECTION,
    ...KAFKA_DURABILITY,
    ...TOPIC_NAME,
    ...PUBLICATION,
    ...PUBLISHED_TABLES,
    "logLevel",
  ],
  required: ["standby.name", "standby.url", "kafka.brokers"],
  flags: {
    "capture-status-url": {
      type: "string",
      value: "url",
      description:
        "the capture's /status URL, for the old primary's last known slot lag when it is unreachable",
    },
    json: { type: "boolean", description: "print the report as one JSON document" },
  },
  async run({ config, flags }) {
    const name = requireSetting(config.standby?.name, "standby.name");
    const url = requireSetting(config.standby?.url, "standby.url");
    const kafkaSettings = requireSetting(config.kafka, "kafka.brokers");
    const others: StandbyTarget[] = config.standbys
      .map((entry) => {
        const at = entry.indexOf("=");
        return { name: entry.slice(0, at), url: entry.slice(at + 1) };
      })
      .filter((s) => s.name !== name);
    const database = topicDatabase({ ...config, source: undefined });
    if (!database && !config.topic)
      throw new ConfigError("config: promote needs --topic or a database in --standby-url");
    const logger = createLogger(config.logLevel, "diffrelay-promote");
    const newEpoch = config.epoch + 1;
    const report = await promote({
      config,
      kafka: createKafka(kafkaSettings, logger),
      logger,
      promoted: { name, url },
      others,
      oldSourceUrl: config.source?.url,
      oldTopics: sourceTopics(config, database),
      newTopics: sourceTopics({ ...config, epoch: newEpoch }, database),
      newEpoch,
      captureStatusUrl:
        typeof flags["capture-status-url"] === "string" ? flags["capture-status-url"] : undefined,
    });
    if (flags.json) {
      console.log(JSON.stringify(report));
      return EXIT.ok;
    }
    const old = report.oldPrimary;
    console.log(
      `promoted ${name}: it holds every source transaction up to commit LSN ${report.holdsSourceLsn}`,
    );
    if (old.alive === true)
      console.log(
        `old primary fenced (read-only, accepts no connections) at ${old.fencedAt}; nothing it committed is lost (the old topic did not grow past the drained end)`,
      );
    else if (old.alive === false) {
      console.log(
        `old primary unreachable (${old.reason}); what its capture had not acknowledged may be lost: last known slot lag ${old.lastKnownSlotLagBytes ?? "unknown"} bytes`,
      );
    } else console.log("old primary not given (--source-url): not fenced");
    for (const s of report.sequencesAdvanced)
      console.log(`sequence ${s.sequence} advanced from ${s.from} to ${s.to}`);
    console.log(
      `re-pointed: ${report.repointed.join(", ") || "none"}; new topic ${report.newTopic} (epoch ${report.newEpoch})`,
    );
    console.log("next, start:");
    console.log(
      `  diffrelay capture --source-url ${redact(url)} --epoch ${report.newEpoch}${config.topic ? ` --topic ${config.topic}` : ""}`,
    );
    for (const o of others) {
      console.log(
        `  diffrelay apply --standby-name ${o.name} --standby-url ${redact(o.url)} --epoch ${report.newEpoch}${config.topic ? ` --topic ${config.topic}` : ` --source-url ${redact(url)}`}`,
      );
    }
    return EXIT.ok;
  },
};
