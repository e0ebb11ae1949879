import { switchover } from "../../../operations/switchover/index.js";
import { ConfigError } from "../../../src/config/config-error.js";
import { EXIT } from "../../../src/errors/exit-codes.js";
import { createLogger } from "../../../src/observability/logger.js";
import { clusterStoreOf } from "../cluster-store.js";
import type { Command } from "../command.js";
import { KAFKA_CONNECTION, KAFKA_DURABILITY } from "../setting-groups.js";

const TIMEOUT_MS = 120_000;

/** diffrelay switchover --cluster NAME --to NODE: returns when NODE is the writable primary and the others follow it. */
export const switchoverCommand: Command = {
  summary:
    "move a cluster's primary role to a standby node, losing nothing; prints the write-unavailable window",
  settings: ["cluster.name", ...KAFKA_CONNECTION, ...KAFKA_DURABILITY, "topicPrefix", "topic", "logLevel"],
  required: ["cluster.name", "kafka.brokers"],
  flags: {
    to: { type: "string", value: "node", description: "the node that becomes the primary" },
    timeout: {
      type: "string",
      value: "ms",
      default: TIMEOUT_MS,
      description: "how long each phase (the old primary's fence, the nodes' new roles) may take",
    },
    json: { type: "boolean", description: "print the report as one JSON document" },
  },
  async run({ config, flags }) {
    const to = flags.to;
    if (typeof to !== "string" || to === "") throw new ConfigError("config: switchover needs --to NODE");
    const timeoutMs = typeof flags.timeout === "string" ? Number(flags.timeout) : TIMEOUT_MS;
    if (!Number.isInteger(timeoutMs) || timeoutMs <= 0)
      throw new ConfigError(`config: --timeout is ${flags.timeout}; expected milliseconds`);
    const logger = createLogger(config.logLevel, "diffrelay-switchover");
    const { store, cluster } = clusterStoreOf(config, logger);
    try {
      const report = await switchover({
        config,
        store,
        logger,
        cluster,
        to,
        fenceTimeoutMs: timeoutMs,
        settleTimeoutMs: timeoutMs,
      });
      if (flags.json) {
        console.log(JSON.stringify(report));
        return EXIT.ok;
      }
      console.log(
        `switched over cluster ${cluster}: ${report.newPrimary} is the primary of epoch ${report.epoch} (was ${report.oldPrimary}, epoch ${report.fromEpoch}); topic ${report.newTopic}`,
      );
      console.log(
        `nothing lost: every node holds the old topic up to offset ${report.drainedEndOffset}; ${report.oldPrimary} follows ${report.newPrimary} without a re-seed`,
      );
      console.log(
        `write-unavailable window: ${report.writeUnavailableMs} ms (fenced at ${report.fencedAt}, writable at ${report.writableAt})`,
      );
      if (report.notFollowing.length > 0) {
        console.log(
          `not following (they were not ready standbys when it started): ${report.notFollowing.join(", ")}: see diffrelay list`,
        );
      }
      return EXIT.ok;
    } finally {
      await store.close();
    }
  },
};
