import { collectStatus, type StatusOptions } from "../../../operations/status/status-collector.js";
import { renderStatus } from "../../../operations/status/status-render.js";
import { ConfigError } from "../../../src/config/config-error.js";
import { postgresClientConfig } from "../../../src/config/postgres-connection.js";
import { EXIT } from "../../../src/errors/exit-codes.js";
import { createKafka } from "../../../src/kafka/kafka-client.js";
import { sourceTopics } from "../../../src/kafka/topic-names.js";
import { createLogger } from "../../../src/observability/logger.js";
import type { Command } from "../command.js";
import { KAFKA_CONNECTION, SOURCE_CONNECTION, STANDBY_CONNECTION, TOPIC_NAME } from "../setting-groups.js";
import { standbyTargets } from "../standby-targets.js";
import { topicDatabase } from "../topic-database.js";

const stringFlag = (v: string | boolean | undefined) => (typeof v === "string" && v !== "" ? v : null);

/**
 * diffrelay status: the source's slot lag and topic end, and each standby's
 * position and lag. Standbys come from --standby-url (with --standby-name) or
 * --standbys name=url,... ; last errors from the processes' /status
 * URLs when given, else "unknown"; an HA cluster's nodes (--node-urls) by
 * their /status: role, epoch, and the last errors of what each runs.
 */
export const statusCommand: Command = {
  summary: "show the source's slot lag and each standby's position and lag (--json, --watch)",
  settings: [
    ...SOURCE_CONNECTION,
    ...STANDBY_CONNECTION,
    "standbys",
    ...KAFKA_CONNECTION,
    ...TOPIC_NAME,
    "capture.slot",
    "logLevel",
  ],
  flags: {
    json: { type: "boolean", description: "print the report as one JSON document" },
    watch: { type: "boolean", description: "redraw every second until interrupted (on a terminal)" },
    "capture-status-url": {
      type: "string",
      value: "url",
      description: "the capture's /status URL, for its last error",
    },
    "apply-status-urls": {
      type: "string",
      value: "url,...",
      description: "the appliers' /status URLs, for their last errors",
    },
    "node-urls": {
      type: "string",
      value: "url,...",
      description:
        "the HA nodes' API URLs (http://host:<metrics-port>): each node's role and epoch, and the last errors of the capture or applier it runs",
    },
  },
  async run({ config, flags }) {
    const standbys: StatusOptions["standbys"] = standbyTargets(config);
    const list = (flag: string) =>
      (stringFlag(flags[flag]) ?? "")
        .split(",")
        .map((u) => u.trim())
        .filter(Boolean);
    const nodeUrls = list("node-urls");
    if (!config.source && standbys.length === 0 && nodeUrls.length === 0) {
      throw new ConfigError(
        "config: status needs --source-url, standbys (--standby-url or --standbys) and/or --node-urls",
      );
    }
    for (const url of [...nodeUrls, ...list("apply-status-urls"), stringFlag(flags["capture-status-url"])]) {
      if (url !== null && !URL.canParse(url))
        throw new ConfigError(`config: "${url}" is not a URL (http://host:port, or its /status)`);
    }
    // --node-urls alone (no source, standby or topic): the nodes' /status is all there is to read.
    const nodesOnly = !config.source && standbys.length === 0 && !config.topic;
    const logger = createLogger(config.logLevel === "info" ? "warn" : config.logLevel, "diffrelay-status");
    const options: StatusOptions = {
      sourceConfig: config.source ? postgresClientConfig(config.source.url, config.source.tls) : null,
      kafka: config.kafka && !nodesOnly ? createKafka(config.kafka, logger) : null,
      topic: nodesOnly ? "-" : sourceTopics(config, topicDatabase(config)).data,
      slot: config.capture.slot,
      standbys,
      captureStatusUrl: stringFlag(flags["capture-status-url"]),
      applyStatusUrls: list("apply-status-urls"),
      nodeUrls,
    };
    const json = flags.json === true;
    const show = async () => {
      const report = await collectStatus(options);
      return json ? JSON.stringify(report) : renderStatus(report);
    };
    if (flags.watch !== true || !process.stdout.isTTY) {
      // --watch off a TTY prints once: a pipe has nothing to redraw.
      console.log(await show());
      return EXIT.ok;
    }
    let stopped = false;
    const stop = () => {
      stopped = true;
    };
    process.once("SIGINT", stop);
    process.once("SIGTERM", stop);
    try {
      while (!stopped) {
        const text = await show();
        // Home the cursor and clear the screen, then draw the new frame.
        process.stdout.write(`\u001b[H\u001b[2J${text}\n`);
        await new Promise((r) => setTimeout(r, 1000));
      }
    } finally {
      process.off("SIGINT", stop);
      process.off("SIGTERM", stop);
    }
    return EXIT.ok;
  },
};
