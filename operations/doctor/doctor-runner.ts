import type { Admin } from "kafkajs";
import type pg from "pg";
import { closeQuietly } from "../../src/errors/close-quietly.js";
import type { SourceTopics } from "../../src/kafka/topic-names.js";
import type { CheckResult, DoctorReport } from "./doctor-report.js";
import { checkKafka, type KafkaCheckOptions } from "./kafka-checks.js";
import { checkSource, type SourceCheckOptions } from "./source-checks.js";
import { checkStandby } from "./standby-checks.js";

export interface DoctorOptions {
  source: SourceCheckOptions | null;
  kafka: (Omit<KafkaCheckOptions, "admin" | "topics"> & { admin: Admin }) | null;
  topics: SourceTopics;
  standbys: { name: string; config: pg.ClientConfig }[];
}

/**
 * Checks a configuration against the real servers: the source, Kafka, then
 * each standby (which needs the source's tables and the topic's offsets).
 * Every check reports; none stops the others.
 */
export async function runDoctor(options: DoctorOptions): Promise<DoctorReport> {
  const checks: CheckResult[] = [];
  const source = options.source ? await checkSource(options.source) : null;
  if (source) checks.push(...source.checks.results);
  let offsets = null;
  if (options.kafka) {
    try {
      const kafka = await checkKafka({ ...options.kafka, topics: options.topics });
      checks.push(...kafka.checks.results);
      offsets = kafka.offsets;
    } finally {
      await closeQuietly(options.kafka.admin.disconnect());
    }
  }
  for (const standby of options.standbys) {
    const result = await checkStandby({
      ...standby,
      topic: options.topics.data,
      tables: source?.tables ?? null,
      offsets,
    });
    checks.push(...result.results);
  }
  return { ok: checks.every((c) => c.status !== "fail"), checks };
}
