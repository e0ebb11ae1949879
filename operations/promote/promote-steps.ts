import type { Admin, Kafka } from "kafkajs";
import pg from "pg";
import { identifySource, migrateSource } from "../../connectors/postgres-source/index.js";
import { ApplyService, createApplyMetrics, writePosition } from "../../connectors/postgres-standby/index.js";
import type { DiffrelayConfig } from "../../src/config/config-schema.js";
import { postgresClientConfig } from "../../src/config/postgres-connection.js";
import { asStandbyWriter } from "../../src/config/standby-session.js";
import { closeQuietly } from "../../src/errors/close-quietly.js";
import { describeShortfall, ensureSourceTopics } from "../../src/kafka/topic-admin.js";
import type { SourceTopics } from "../../src/kafka/topic-names.js";
import { loadMigrations, runMigrations } from "../../src/migrations/migration-runner.js";
import type { Logger } from "../../src/observability/logger.js";
import { computeSourceId } from "../../src/wire/envelope.js";
import { type AdvancedSequence, advanceOwnedSequences } from "./sequence-advancer.js";

/**
 * The steps of a promotion, shared by `diffrelay promote` (one process drives
 * every standby) and `diffrelay node` (each node takes its own steps).
 */

export interface StandbyTarget {
  name: string;
  url: string;
}

/** Applies, in this process, what the old topic holds below `end` for this standby, then returns. */
export async function drainStandby(options: {
  config: DiffrelayConfig;
  kafka: Kafka;
  logger: Logger;
  standby: StandbyTarget;
  topics: SourceTopics;
  end: bigint;
}): Promise<void> {
  const service = new ApplyService({
    config: options.config,
    standbyName: options.standby.name,
    standbyUrl: options.standby.url,
    topics: options.topics,
    kafka: options.kafka,
    logger: options.logger.child({ drain: options.standby.name }),
    metrics: createApplyMetrics(options.standby.name),
    drainTo: options.end,
  });
  await service.run();
}

export interface NewSource {
  sequencesAdvanced: AdvancedSequence[];
  sourceId: bigint;
}

/**
 * Makes a drained standby the source of `newTopics`: its owned sequences past
 * the values its rows hold, its publication and slot (created now, before
 * anything but the drained changes was written), and the new epoch's topics.
 */
export async function becomeSource(options: {
  config: DiffrelayConfig;
  admin: Admin;
  logger: Logger;
  url: string;
  newTopics: SourceTopics;
}): Promise<NewSource> {
  const { config } = options;
  const result = await withDatabase(options.url, config, async (client) => {
    const advanced = await advanceOwnedSequences(client);
    await migrateSource(client, {
      publicationName: config.capture.publication,
      slotName: config.capture.slot,
      tables: config.capture.tables,
      schemas: config.capture.schemas,
      identity: config.capture.identity,
    });
    const identity = await identifySource(client);
    return {
      sequencesAdvanced: advanced,
      sourceId: computeSourceId(identity.systemIdentifier, identity.databaseName),
    };
  });
  for (const shortfall of await ensureSourceTopics(options.admin, options.newTopics, config.kafka ?? {})) {
    options.logger.warn({ topic: shortfall.topic, ...shortfall.actual }, describeShortfall(shortfall));
  }
  return result;
}

/**
 * Points a standby that holds exactly what the new source held when it became
 * one at the start of the new epoch's topic. A demoted primary gets the
 * standby bookkeeping tables here, before its first position.
 */
export async function pointStandbyAt(options: {
  config: DiffrelayConfig;
  standby: StandbyTarget;
  topics: SourceTopics;
  sourceId: bigint;
  epoch: number;
}): Promise<void> {
  await withDatabase(options.standby.url, options.config, async (client) => {
    await runMigrations(client, loadMigrations("standby"));
    await client.query("BEGIN");
    await writePosition(client, options.standby.name, {
      topic: options.topics.data,
      partition: 0,
      nextOffset: 0n,
      lastCommitLsn: 0n,
      lastCommitTimeMicros: null,
      sourceId: options.sourceId,
      epoch: options.epoch,
    });
    await client.query("COMMIT");
  });
}

export async function withDatabase<T>(
  url: string,
  config: DiffrelayConfig,
  fn: (c: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client(asStandbyWriter(postgresClientConfig(url, config.standby?.tls)));
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await closeQuietly(client.end());
  }
}
