import { type FailoverReport, failover } from "../../../operations/failover/failover-runner.js";
import type { StandbyTarget } from "../../../operations/promote/promote-runner.js";
import { ConfigError } from "../../../src/config/config-error.js";
import { requireSetting } from "../../../src/config/config-loader.js";
import { errorPolicy } from "../../../src/errors/error-policy.js";
import { EXIT } from "../../../src/errors/exit-codes.js";
import { createKafka } from "../../../src/kafka/kafka-client.js";
import { sourceTopics } from "../../../src/kafka/topic-names.js";
import { createLogger } from "../../../src/observability/logger.js";
import { redact, redactError } from "../../../src/observability/redact.js";
import type { Command } from "../command.js";
import {
  KAFKA_CONNECTION,
  KAFKA_DURABILITY,
  PUBLICATION,
  PUBLISHED_TABLES,
  SOURCE_CONNECTION,
  TOPIC_NAME,
} from "../setting-groups.js";
import { topicDatabase } from "../topic-database.js";

/**
 * diffrelay failover --to NAME --standbys a=url,b=url --source-url OLD [--capture-status-url URL] [--json]
 * For a primary that is gone: drains every reachable standby, checks they
 * agree, promotes NAME and re-points the others. Exit 0: promoted, nothing a
 * client saw committed is lost (zero-loss mode was on); 8: promoted, but the
 * old primary may have committed what no standby has (the report says how
 * much WAL); 3: refused, nothing changed.
 */
export const failoverCommand: Command = {
  summary:
    "promote a standby when the primary is gone: drain the reachable standbys, check they agree, promote, re-point, report what may be lost",
  settings: [
    ...SOURCE_CONNECTION,
    "standby.tls.caFile",
    "standbys",
    ...KAFKA_CONNECTION,
    ...KAFKA_DURABILITY,
    ...TOPIC_NAME,
    ...PUBLICATION,
    ...PUBLISHED_TABLES,
    "logLevel",
  ],
  required: ["source.url", "standbys", "kafka.brokers"],
  flags: {
    to: { type: "string", value: "name", description: "the standby to promote, one of --standbys" },
    "capture-status-url": {
      type: "string",
      value: "url",
      description: "the old capture's /status URL: its last known slot lag and zero-loss mode",
    },
    json: { type: "boolean", description: "print the report (or the refusal) as one JSON document" },
  },
  async run({ config, flags }) {
    const kafkaSettings = requireSetting(config.kafka, "kafka.brokers");
    const source = requireSetting(config.source, "source.url");
    const standbys: StandbyTarget[] = config.standbys.map((entry) => {
      const at = entry.indexOf("=");
      return { name: entry.slice(0, at), url: entry.slice(at + 1) };
    });
    const toName = typeof flags.to === "string" ? flags.to : "";
    const to = standbys.find((s) => s.name === toName);
    if (!to)
      throw new ConfigError(
        `config: failover needs --to naming one of --standbys (${standbys.map((s) => s.name).join(", ") || "none given"})`,
      );
    const database = topicDatabase(config);
    if (!database && !config.topic)
      throw new ConfigError("config: failover needs --topic or a database in --source-url");
    const logger = createLogger(config.logLevel, "diffrelay-failover");
    const newEpoch = config.epoch + 1;
    let report: FailoverReport;
    try {
      report = await failover({
        config,
        kafka: createKafka(kafkaSettings, logger),
        logger,
        to,
        others: standbys.filter((s) => s !== to),
        oldSourceUrl: source.url,
        captureStatusUrl:
          typeof flags["capture-status-url"] === "string" ? flags["capture-status-url"] : undefined,
        oldTopics: sourceTopics(config, database),
        newTopics: sourceTopics({ ...config, epoch: newEpoch }, database),
        newEpoch,
      });
    } catch (err) {
      if (flags.json !== true) throw err;
      const { kind, exitCode } = errorPolicy(err);
      console.log(
        JSON.stringify({ outcome: kind === "setup" ? "refused" : "failed", kind, error: redactError(err) }),
      );
      return exitCode;
    }
    const exit = report.outcome === "promoted" ? EXIT.ok : EXIT.possibleLoss;
    if (flags.json === true) {
      console.log(JSON.stringify(report));
      return exit;
    }
    console.log(
      `failed over to ${report.promoted}: it holds every source transaction up to commit LSN ${report.holdsSourceLsn}`,
    );
    console.log(`old primary unreachable (${report.oldPrimary.reason})`);
    console.log(
      report.mayBeLost.acknowledgedCommits === "none"
        ? `nothing acknowledged is lost: ${report.mayBeLost.why}`
        : `MAY BE LOST: ${report.mayBeLost.why}`,
    );
    for (const s of report.sequencesAdvanced)
      console.log(`sequence ${s.sequence} advanced from ${s.from} to ${s.to}`);
    console.log(
      `re-pointed: ${report.repointed.join(", ") || "none"}; new topic ${report.newTopic} (epoch ${report.newEpoch})`,
    );
    for (const u of report.unreachable)
      console.log(
        `not re-pointed (unreachable): ${u.name} (${u.reason}); it must be re-seeded from the new primary`,
      );
    console.log("next: stop the old capture (it must not publish again), then start:");
    console.log(
      `  diffrelay capture --source-url ${redact(to.url)} --epoch ${report.newEpoch}${config.topic ? ` --topic ${config.topic}` : ""}`,
    );
    for (const name of report.repointed) {
      const s = standbys.find((t) => t.name === name) as StandbyTarget;
      console.log(
        `  diffrelay apply --standby-name ${s.name} --standby-url ${redact(s.url)} --epoch ${report.newEpoch}${config.topic ? ` --topic ${config.topic}` : ` --source-url ${redact(to.url)}`}`,
      );
    }
    return exit;
  },
};
