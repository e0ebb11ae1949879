import { listCluster, renderListing } from "../../../operations/cluster-list/index.js";
import { EXIT } from "../../../src/errors/exit-codes.js";
import { createLogger } from "../../../src/observability/logger.js";
import { clusterStoreOf } from "../cluster-store.js";
import type { Command } from "../command.js";
import { KAFKA_CONNECTION } from "../setting-groups.js";

const WATCH_INTERVAL_MS = 2000;

/** diffrelay list --cluster NAME [--json] [--watch]: the nodes, their roles, epoch, lag, the lease and last error. */
export const listCommand: Command = {
  summary:
    "list a cluster's nodes: role, epoch, lag, lease and when a failover would start, last error (like patronictl list)",
  settings: ["cluster.name", ...KAFKA_CONNECTION, "topicPrefix", "logLevel"],
  required: ["cluster.name", "kafka.brokers"],
  flags: {
    json: {
      type: "boolean",
      description: "print the listing as one JSON document (one per line with --watch)",
    },
    watch: {
      type: "boolean",
      description: `print it again every ${WATCH_INTERVAL_MS / 1000} s until interrupted`,
    },
  },
  async run({ config, flags }) {
    const logger = createLogger(config.logLevel, "diffrelay-list");
    const { store, cluster } = clusterStoreOf(config, logger);
    let stopping = false;
    const onSignal = () => {
      stopping = true;
    };
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    try {
      do {
        const listing = await listCluster(store, cluster);
        console.log(flags.json ? JSON.stringify(listing) : `${renderListing(listing)}\n`);
        if (flags.watch) await new Promise((r) => setTimeout(r, WATCH_INTERVAL_MS));
      } while (flags.watch && !stopping);
      return EXIT.ok;
    } finally {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      await store.close();
    }
  },
};
