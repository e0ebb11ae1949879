import { renderReport, runVerify } from "../../../operations/verify/verify-runner.js";
import { ConfigError } from "../../../src/config/config-error.js";
import { requireSetting } from "../../../src/config/config-loader.js";
import { postgresClientConfig } from "../../../src/config/postgres-connection.js";
import { EXIT } from "../../../src/errors/exit-codes.js";
import { createKafka } from "../../../src/kafka/kafka-client.js";
import { sourceTopics } from "../../../src/kafka/topic-names.js";
import { createLogger } from "../../../src/observability/logger.js";
import type { Command, CommandFlag } from "../command.js";
import {
  KAFKA_CONNECTION,
  PUBLICATION,
  SOURCE_CONNECTION,
  STANDBY_CONNECTION,
  TOPIC_NAME,
} from "../setting-groups.js";
import { topicDatabase } from "../topic-database.js";

function positiveInt(value: string | boolean | undefined, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (typeof value !== "string" || !Number.isInteger(n) || n < 1) {
    throw new ConfigError(`config: --${flag} is ${JSON.stringify(value)}; expected a positive integer`);
  }
  return n;
}

const FLAGS = {
  json: { type: "boolean", description: "print the report as one JSON document" },
  "max-attempts": {
    type: "string",
    value: "n",
    default: 30,
    description: "snapshots tried before giving up when the standby never reaches one",
  },
  "attempt-timeout-seconds": {
    type: "string",
    value: "s",
    default: 120,
    description: "how long one attempt waits for the standby to reach the snapshot",
  },
  "chunk-rows": {
    type: "string",
    value: "n",
    default: 10_000,
    description: "rows per hash bucket compared at once",
  },
} satisfies Record<string, CommandFlag>;

/**
 * diffrelay verify: compares every published table of the source and a
 * standby at one source snapshot, with the applier running. Exit 0 when equal,
 * 6 when different, 1 when no comparable point was found.
 */
export const verifyCommand: Command = {
  summary: "compare a standby with the source at one snapshot; exit 6 when they differ",
  settings: [
    ...SOURCE_CONNECTION,
    ...STANDBY_CONNECTION,
    ...KAFKA_CONNECTION,
    ...TOPIC_NAME,
    ...PUBLICATION,
    "logLevel",
  ],
  required: ["source.url", "standby.name", "standby.url", "kafka.brokers"],
  flags: FLAGS,
  async run({ config, flags }) {
    const source = requireSetting(config.source, "source.url");
    const standbyName = requireSetting(config.standby?.name, "standby.name");
    const standbyUrl = requireSetting(config.standby?.url, "standby.url");
    const kafkaSettings = requireSetting(config.kafka, "kafka.brokers");
    const logger = createLogger(config.logLevel, "diffrelay-verify").child({ standby: standbyName });
    const json = flags.json === true;
    const report = await runVerify({
      sourceConfig: postgresClientConfig(source.url, source.tls),
      standbyConfig: postgresClientConfig(standbyUrl, config.standby?.tls),
      kafka: createKafka(kafkaSettings, logger),
      topic: sourceTopics(config, topicDatabase(config)).data,
      publication: config.capture.publication,
      captureSlot: config.capture.slot,
      maxAttempts: positiveInt(flags["max-attempts"], "max-attempts", FLAGS["max-attempts"].default),
      attemptTimeoutMs:
        positiveInt(
          flags["attempt-timeout-seconds"],
          "attempt-timeout-seconds",
          FLAGS["attempt-timeout-seconds"].default,
        ) * 1000,
      chunkRows: positiveInt(flags["chunk-rows"], "chunk-rows", FLAGS["chunk-rows"].default),
      maxReportedRows: 100,
      log: (fields) => logger.info(fields, String(fields.event ?? "verify")),
    });
    console.log(json ? JSON.stringify({ standby: standbyName, ...report }) : renderReport(report));
    return report.equal ? EXIT.ok : EXIT.different;
  },
};
