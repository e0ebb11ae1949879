import type { Kafka } from "kafkajs";
import type pg from "pg";
import { closeQuietly } from "../../src/errors/close-quietly.js";
import type { SourceTopics } from "../../src/kafka/topic-names.js";
import { runSeed } from "../seed/seed-runner.js";

/** A re-seed: which primary's rows go onto which database, and the topic it then follows. */
export interface PrimaryCopy {
  kafka: Kafka;
  source: { url: string; config: pg.ClientConfig };
  standby: { name: string; url: string; config: pg.ClientConfig };
  topics: SourceTopics;
  epoch: number;
  publication: string;
  /** The capture's slot on the source (unset: its database's default). */
  slot: string | undefined;
  seed: { parallel: number; rangeRows: number };
}

/**
 * A full copy of the published tables from the primary at a snapshot onto an
 * existing database (its rows replaced), with the exact position on `topics`
 * that snapshot corresponds to; returns the tables copied.
 */
export async function copyFromPrimary(copy: PrimaryCopy): Promise<string[]> {
  const admin = copy.kafka.admin();
  await admin.connect();
  try {
    const result = await runSeed({
      sourceUrl: copy.source.url,
      sourceConfig: copy.source.config,
      standbyUrl: copy.standby.url,
      standbyConfig: copy.standby.config,
      standbyName: copy.standby.name,
      topics: copy.topics,
      admin,
      publication: copy.publication,
      captureSlot: copy.slot,
      parallel: copy.seed.parallel,
      rangeRows: copy.seed.rangeRows,
      createSchema: false,
      epoch: copy.epoch,
    });
    return result.tables.map((t) => t.table);
  } finally {
    await closeQuietly(admin.disconnect());
  }
}
