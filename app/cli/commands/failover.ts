import { clusterFailover } from "../../../operations/failover/cluster-failover.js";
import type { MayBeLost } from "../../../operations/failover/failover-loss.js";
import { type FailoverReport, failover } from "../../../operations/failover/failover-runner.js";
import { leaseTimingsOf } from "../../../operations/lease/index.js";
import type { StandbyTarget } from "../../../operations/promote/promote-runner.js";
import { ConfigError } from "../../../src/config/config-error.js";
import { requireSetting } from "../../../src/config/config-loader.js";
import { errorPolicy } from "../../../src/errors/error-policy.js";
import { EXIT } from "../../../src/errors/exit-codes.js";
import { createKafka } from "../../../src/kafka/kafka-client.js";
import { sourceTopics } from "../../../src/kafka/topic-names.js";
import { createLogger } from "../../../src/observability/logger.js";
import { redact, redactError } from "../../../src/observability/redact.js";
import { clusterStoreOf } from "../cluster-store.js";
import type { Command, CommandContext } from "../command.js";
import {
  KAFKA_CONNECTION,
  KAFKA_DURABILITY,
  PUBLICATION,
  PUBLISHED_TABLES,
  SOURCE_CONNECTION,
  TOPIC_NAME,
} from "../setting-groups.js";
import { topicDatabase } from "../topic-database.js";

const TIMEOUT_MS = 120_000;

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
    "cluster.name",
    ...SOURCE_CONNECTION,
    "standby.tls.caFile",
    "standbys",
    ...KAFKA_CONNECTION,
    ...KAFKA_DURABILITY,
    ...TOPIC_NAME,
    ...PUBLICATION,
    ...PUBLISHED_TABLES,
    "node.leaseTtlMs",
    "logLevel",
  ],
  required: ["kafka.brokers"],
  flags: {
    to: {
      type: "string",
      value: "name",
      description: "the node (with --cluster) or standby (one of --standbys) to promote",
    },
    timeout: {
      type: "string",
      value: "ms",
      default: TIMEOUT_MS,
      description: "with --cluster: how long the nodes may take to drain and reach their new roles",
    },
    "capture-status-url": {
      type: "string",
      value: "url",
      description: "the old capture's /status URL: its last known slot lag and zero-loss mode",
    },
    json: { type: "boolean", description: "print the report (or the refusal) as one JSON document" },
  },
  async run({ config, flags }) {
    if (config.cluster?.name) return runClusterFailover(config, flags);
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
      return printFailure(err);
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
    console.log(describeLoss(report.mayBeLost));
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

function describeLoss(loss: MayBeLost): string {
  return loss.acknowledgedCommits === "none"
    ? `nothing acknowledged is lost: ${loss.why}`
    : `MAY BE LOST: ${loss.why}`;
}

/** With --cluster: the nodes drain and change roles; this claims the epoch and waits for them. */
async function runClusterFailover(
  config: CommandContext["config"],
  flags: CommandContext["flags"],
): Promise<number> {
  const to = flags.to;
  if (typeof to !== "string" || to === "") throw new ConfigError("config: failover needs --to NODE");
  const timeoutMs = typeof flags.timeout === "string" ? Number(flags.timeout) : TIMEOUT_MS;
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0)
    throw new ConfigError(`config: --timeout is ${flags.timeout}; expected milliseconds`);
  const logger = createLogger(config.logLevel, "diffrelay-failover");
  const { store, cluster } = clusterStoreOf(config, logger);
  try {
    const report = await clusterFailover({
      config,
      kafka: createKafka(requireSetting(config.kafka, "kafka.brokers"), logger),
      store,
      logger,
      cluster,
      to,
      settleTimeoutMs: timeoutMs,
      defaultLeaseTtlMs: leaseTimingsOf(config.node).ttlMs,
    });
    const exit = report.outcome === "promoted" ? EXIT.ok : EXIT.possibleLoss;
    if (flags.json === true) {
      console.log(JSON.stringify(report));
      return exit;
    }
    console.log(
      `failed over cluster ${cluster}: ${report.newPrimary} is the primary of epoch ${report.epoch} (was ${report.oldPrimary.name}, epoch ${report.fromEpoch}); topic ${report.newTopic}`,
    );
    console.log(`old primary unreachable (${report.oldPrimary.reason})`);
    console.log(describeLoss(report.mayBeLost));
    console.log(
      `following ${report.newPrimary}: ${report.following.join(", ") || "none"}; every one drained the old topic to offset ${report.drainedEndOffset}`,
    );
    if (report.notFollowing.length > 0)
      console.log(
        `not following (not ready standbys when it started): ${report.notFollowing.join(", ")}: see diffrelay list`,
      );
    return exit;
  } catch (err) {
    if (flags.json !== true) throw err;
    return printFailure(err);
  } finally {
    await store.close();
  }
}

/** With --json, a failure is a report too: refused (3, nothing changed), conflict (7), diverged (4) or failed. */
function printFailure(err: unknown): number {
  const { kind, exitCode } = errorPolicy(err);
  const outcome =
    kind === "setup"
      ? "refused"
      : kind === "conflict"
        ? "conflict"
        : kind === "drift"
          ? "diverged"
          : "failed";
  console.log(JSON.stringify({ outcome, kind, exitCode, error: redactError(err) }));
  return exitCode;
}
