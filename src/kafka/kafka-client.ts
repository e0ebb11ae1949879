import { readFileSync } from "node:fs";
import kafkajs, { type KafkaConfig, type SASLOptions } from "kafkajs";
import SnappyCodec from "kafkajs-snappy";

// kafkajs is CommonJS: its runtime values come through the default export under ESM.
const { CompressionCodecs, CompressionTypes, Kafka, logLevel, Partitioners } = kafkajs;

import type { DiffrelayConfig } from "../config/config-schema.js";
import type { Logger } from "../observability/logger.js";
import { redact } from "../observability/redact.js";
import { noDelaySocketFactory } from "./kafka-socket.js";

type KafkaSettings = NonNullable<DiffrelayConfig["kafka"]>;

// snappyjs is pure JavaScript: no native build at install time.
CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec as () => unknown;

export const COMPRESSION = {
  none: CompressionTypes.None,
  gzip: CompressionTypes.GZIP,
  snappy: CompressionTypes.Snappy,
} as const;

/**
 * Every producer diffrelay makes: one request in flight, so a retry cannot
 * reorder, and no topic created by a send. Idempotent where a retry after the
 * broker appended must not write twice. The partitioner is named only so that
 * kafkajs does not warn in every log: each topic written has one partition.
 */
export function orderedProducer(kafka: kafkajs.Kafka, options: { idempotent: boolean }): kafkajs.Producer {
  return kafka.producer({
    idempotent: options.idempotent,
    maxInFlightRequests: 1,
    allowAutoTopicCreation: false,
    createPartitioner: Partitioners.DefaultPartitioner,
  });
}

export function createKafka(settings: KafkaSettings, logger: Logger): kafkajs.Kafka {
  const config: KafkaConfig = {
    clientId: settings.clientId,
    brokers: settings.brokers,
    connectionTimeout: 5000,
    requestTimeout: 30000,
    retry: { initialRetryTime: 200, retries: 8, maxRetryTime: 5000 },
    logLevel: logLevel.WARN,
    socketFactory: noDelaySocketFactory,
    logCreator: () => (entry) => {
      const { message, ...rest } = entry.log;
      const fields = { kafka: entry.namespace, ...rest };
      const text = redact(String(message));
      // kafkajs warns whenever an idempotent producer has bounded retries. Bounded is deliberate: a send that
      // still fails ends the capture session, which resumes from the slot with a new producer id.
      if (text.startsWith("Limiting retries for the idempotent producer")) return logger.debug(fields, text);
      if (entry.level <= logLevel.ERROR) logger.error(fields, text);
      else if (entry.level === logLevel.WARN) logger.warn(fields, text);
      else logger.debug(fields, text);
    },
  };
  if (settings.tls.enabled) {
    config.ssl = {
      rejectUnauthorized: !settings.tls.insecure,
      ...(settings.tls.caFile ? { ca: [readFileSync(settings.tls.caFile, "utf8")] } : {}),
    };
  }
  if (settings.sasl) {
    config.sasl = {
      mechanism: settings.sasl.mechanism,
      username: settings.sasl.username,
      password: settings.sasl.password,
    } as SASLOptions;
  }
  return new Kafka(config);
}
