// `npm run stack -- up|down|env|status [--pg=debian|embedded] [--base-dir=DIR] [--purge]`
// A real local PostgreSQL x3 + Kafka stack for development and tests, without Docker.
// `npm run stack -- kafka-cluster up|down|env [--brokers=3] [--base-dir=DIR] [--purge]`: a separate
// multi-broker KRaft cluster (replication factor 3, leader failover) next to the stack's single broker.
import { parseArgs } from "node:util";
import { stackEnv, stackStatus, startStack, stopStack } from "./stack/index.js";
import {
  kafkaClusterBrokers,
  readKafkaCluster,
  startKafkaCluster,
  stopKafkaCluster,
} from "./stack/kafka-cluster.js";
import type { PgFlavor } from "./stack/stack-state.js";

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: {
    pg: { type: "string" },
    "base-dir": { type: "string" },
    purge: { type: "boolean", default: false },
    "no-kafka": { type: "boolean", default: false },
    brokers: { type: "string" },
  },
});
const command = positionals[0] ?? "status";
const baseDir = values["base-dir"];

// Single quotes keep generated passwords intact in `eval "$(npm run -s stack -- env)"`.
const exportLines = (env: Record<string, string | undefined>) =>
  Object.entries(env)
    .filter((e): e is [string, string] => e[1] !== undefined)
    .map(([k, v]) => `export ${k}='${v.replaceAll("'", "'\\''")}'`)
    .join("\n");

async function kafkaCluster(action: string): Promise<number> {
  switch (action) {
    case "up": {
      const t0 = Date.now();
      const brokers = values.brokers === undefined ? 3 : Number(values.brokers);
      if (!Number.isInteger(brokers)) throw new Error(`--brokers wants a number, not "${values.brokers}"`);
      const state = await startKafkaCluster({ baseDir, brokers, log: (m) => console.error(`# ${m}`) });
      console.error(`# kafka cluster of ${state.nodes.length} nodes ready in ${Date.now() - t0} ms`);
      console.log(exportLines({ DIFFRELAY_KAFKA_BROKERS: kafkaClusterBrokers(state).join(",") }));
      return 0;
    }
    case "env": {
      const state = readKafkaCluster(baseDir);
      if (!state) throw new Error("no kafka cluster: run `npm run stack -- kafka-cluster up` first");
      console.log(exportLines({ DIFFRELAY_KAFKA_BROKERS: kafkaClusterBrokers(state).join(",") }));
      return 0;
    }
    case "down": {
      const stopped = await stopKafkaCluster({ baseDir, purge: values.purge });
      console.error(`# kafka cluster: stopped ${stopped} nodes${values.purge ? " (data purged)" : ""}`);
      return 0;
    }
    default:
      console.error(`unknown kafka-cluster action "${action}": use up | down | env`);
      return 2;
  }
}

async function main(): Promise<number> {
  switch (command) {
    case "kafka-cluster":
      return kafkaCluster(positionals[1] ?? "");
    case "up": {
      const t0 = Date.now();
      const result = await startStack({
        baseDir,
        pg: values.pg as PgFlavor | undefined,
        kafka: !values["no-kafka"],
        log: (m) => console.error(`# ${m}`),
      });
      for (const [what, ms] of Object.entries(result.timingsMs))
        console.error(`# ${what}: ready in ${ms} ms`);
      console.error(
        `# stack ${result.wasRunning ? "was already running" : `up (started: ${result.started.join(", ")})`} ` +
          `in ${Date.now() - t0} ms; PostgreSQL runs with fsync=off (dev/test data only)`,
      );
      console.log(exportLines(result.env));
      return 0;
    }
    case "env":
      console.log(exportLines(stackEnv({ baseDir })));
      return 0;
    case "status": {
      const services = stackStatus({ baseDir });
      if (!services.length) console.log("stack not initialised");
      for (const s of services) {
        console.log(
          `${s.name.padEnd(9)} ${s.running ? `running pid ${s.pid}` : "stopped"}  127.0.0.1:${s.port}  ${s.detail}`,
        );
      }
      return services.length && services.every((s) => s.running) ? 0 : 3;
    }
    case "down": {
      const stopped = await stopStack({ baseDir, purge: values.purge });
      console.error(
        `# stopped: ${stopped.length ? stopped.join(", ") : "nothing was running"}${values.purge ? " (data purged)" : ""}`,
      );
      return 0;
    }
    default:
      console.error(`unknown command "${command}": use up | down | env | status`);
      return 2;
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  },
);
