import type { Kafka } from "kafkajs";
import type pg from "pg";
import { readPosition } from "../../connectors/postgres-standby/index.js";
import type { DiffrelayConfig } from "../../src/config/config-schema.js";
import { postgresClientConfig } from "../../src/config/postgres-connection.js";
import { closeQuietly } from "../../src/errors/close-quietly.js";
import { partitionOffsets } from "../../src/kafka/topic-admin.js";
import type { Logger } from "../../src/observability/logger.js";
import type { ClusterState, ClusterView } from "../cluster/index.js";
import { writableSessionUrl } from "../promote/database-access.js";
import { withDatabase } from "../promote/promote-steps.js";
import { followEpochChain } from "./chain-follower.js";
import {
  type ChainTarget,
  type EpochChain,
  epochChain,
  lastEpochAsPrimary,
  startingPoint,
} from "./epoch-chain.js";
import { copyFromPrimary } from "./primary-copy.js";
import { RejoinRefusedError } from "./rejoin-errors.js";
import type { RejoinReport } from "./rejoin-report.js";
import { rejoinAsStandby } from "./rejoin-runner.js";

export interface ClusterCatchUpOptions {
  /** The cluster as the node reads it: its current state and every epoch's record. */
  view: ClusterView;
  /** The node's name, which is its standby name. */
  name: string;
  config: DiffrelayConfig;
  kafka: Kafka;
  logger: Logger;
  /** The node's own database, as configured. */
  databaseUrl: string;
  /**
   * The node fenced its database as a stale primary: its starting point is
   * the epoch it was primary of, and what it committed there that never
   * reached Kafka is undone first (or it is re-seeded). Otherwise it is a
   * standby, and its starting point is its latest position on an epoch's topic.
   */
  stalePrimary: boolean;
  /**
   * The database (URL and client settings, with this node's credentials for
   * it) of `primary`, the target epoch's primary, once its node reports it: a
   * stale primary's rewind compares with it, and a re-seed copies from it.
   */
  primaryDatabase: (primary: string, epoch: number) => Promise<{ url: string; config: pg.ClientConfig }>;
}

/** Where the node's database is positioned now, and what a stale primary's rejoin found. */
export interface ClusterCatchUp {
  /**
   * The epoch whose topic the database is positioned on: start its applier
   * there. The current epoch, or the one a role change under way leaves (its
   * phase fencing), in which the node then takes part as any standby.
   */
  target: ChainTarget;
  /** A stale primary's rejoin report (how its unpublished transactions were undone, or why it was re-seeded); null for a standby. */
  report: RejoinReport | null;
  /** A standby that could not follow the chain: why, and the tables copied from the target's primary; null when it followed. */
  reseeded: { reasons: string[]; tables: string[] } | null;
}

/**
 * A node that is behind the cluster by any number of role changes catches up:
 * the one entry point the node calls, with the view, when it finds itself
 * a stale primary (fenced) or a standby of an epoch other than the current
 * one and the one before it.
 *
 * The chain of epochs from the node's to the cluster's (epochChain) says
 * which topics to apply, each to its drained end, before following the
 * target's. A stale primary goes through rejoinAsStandby, which reports and
 * undoes what it never published, follows the chain, or re-seeds from the
 * target's primary saying why. A standby follows the chain, or, when the
 * chain cannot be followed, is re-seeded from the target's primary, every
 * reason logged as an error and returned.
 */
export async function catchUpWithCluster(options: ClusterCatchUpOptions): Promise<ClusterCatchUp> {
  const { view, name, config, logger } = options;
  const current = view.state;
  if (!current)
    throw new RejoinRefusedError(`node ${name}: the cluster has no state yet: nothing to catch up with`);
  const url = writableSessionUrl(options.databaseUrl);
  if (options.stalePrimary) {
    const oldEpoch = lastEpochAsPrimary(view.states, name);
    const old = oldEpoch === null ? undefined : view.states.get(oldEpoch);
    if (oldEpoch === null || !old) {
      throw new RejoinRefusedError(
        `node ${name} is fenced as a stale primary, but no epoch on the cluster topic had it as primary: which topic its database published to is unknown; re-seed it from ${current.primary}`,
      );
    }
    const chain = epochChain({
      states: view.states,
      current,
      from: { epoch: oldEpoch, offset: null },
      lowOffsets: await lowOffsets(options.kafka, view.states),
    });
    logChain(logger, name, chain, `its own epoch ${oldEpoch}`);
    const newPrimary = await options.primaryDatabase(chain.target.primary, chain.target.epoch);
    const report = await rejoinAsStandby({
      config,
      oldPrimaryUrl: options.databaseUrl,
      oldPrimaryConfig: postgresClientConfig(options.databaseUrl, config.standby?.tls),
      standbyName: name,
      newPrimaryUrl: newPrimary.url,
      newPrimaryConfig: newPrimary.config,
      kafka: options.kafka,
      logger,
      oldTopics: old.topics,
      newTopics: chain.target.topics,
      epoch: chain.target.epoch,
      slot: config.capture.slot,
      publication: config.capture.publication,
      seed: { parallel: config.seed.parallel, rangeRows: config.seed.rangeRows },
      reportFile: undefined,
      chain,
    });
    return { target: chain.target, report, reseeded: null };
  }

  const held = await latestPosition(url, config, view.states);
  if (!held) {
    throw new RejoinRefusedError(
      `node ${name}'s database has no position on any epoch's topic of the cluster (epoch ${current.epoch}, primary ${current.primary}): it is not a standby of this cluster. ` +
        `Seed it first: diffrelay seed --source-url <${current.primary}'s database> --standby-url <this database> --standby-name ${name} --topic ${current.topics.data}, then start the node again`,
    );
  }
  const chain = epochChain({
    states: view.states,
    current,
    from: held,
    lowOffsets: await lowOffsets(options.kafka, view.states),
  });
  logChain(logger, name, chain, `its position ${held.offset} on epoch ${held.epoch}'s topic`);
  if (chain.kind === "reseed") {
    const tables = await reseedStandby(options, chain.target);
    logger.error(
      { reasons: chain.reasons, tables, topic: chain.target.topics.data },
      `node ${name} missed role changes it could not follow (it held epoch ${held.epoch}'s topic up to offset ${held.offset}): RE-SEEDED from ${chain.target.primary} onto epoch ${chain.target.epoch}'s topic because: ${chain.reasons.join("; ")}`,
    );
    return { target: chain.target, report: null, reseeded: { reasons: chain.reasons, tables } };
  }
  await followEpochChain({
    config,
    kafka: options.kafka,
    logger,
    standby: { name, url },
    links: chain.links,
  });
  return { target: chain.target, report: null, reseeded: null };
}

/** A full copy from the target's primary, positioned exactly on its topic; returns the tables copied. */
async function reseedStandby(options: ClusterCatchUpOptions, target: ChainTarget): Promise<string[]> {
  const { config, databaseUrl, name } = options;
  return copyFromPrimary({
    kafka: options.kafka,
    source: await options.primaryDatabase(target.primary, target.epoch),
    standby: { name, url: databaseUrl, config: postgresClientConfig(databaseUrl, config.standby?.tls) },
    topics: target.topics,
    epoch: target.epoch,
    publication: config.capture.publication,
    slot: config.capture.slot,
    seed: { parallel: config.seed.parallel, rangeRows: config.seed.rangeRows },
  });
}

/** The latest epoch on whose topic the database holds a position, and that position's next offset. */
async function latestPosition(
  url: string,
  config: DiffrelayConfig,
  states: ReadonlyMap<number, ClusterState>,
): Promise<{ epoch: number; offset: bigint } | null> {
  return withDatabase(url, config, async (client) => {
    const held: { epoch: number; offset: bigint }[] = [];
    for (const state of states.values()) {
      const position = await readPosition(client, state.topics.data, 0).catch((err: { code?: string }) => {
        // No standby tables at all: a database that never was a standby.
        if (err.code === "42P01" || err.code === "3F000") return null;
        throw err;
      });
      if (position) held.push({ epoch: state.epoch, offset: position.nextOffset });
    }
    return startingPoint(held);
  });
}

/** The first offset Kafka still holds of each epoch's topic that exists. */
async function lowOffsets(
  kafka: Kafka,
  states: ReadonlyMap<number, ClusterState>,
): Promise<ReadonlyMap<string, bigint>> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const out = new Map<string, bigint>();
    for (const state of states.values()) {
      if (existing.has(state.topics.data)) {
        out.set(state.topics.data, (await partitionOffsets(admin, state.topics.data)).low);
      }
    }
    return out;
  } finally {
    await closeQuietly(admin.disconnect());
  }
}

function logChain(logger: Logger, name: string, chain: EpochChain, from: string): void {
  if (chain.kind === "follow") {
    logger.info(
      {
        links: chain.links.map((l) => ({
          epoch: l.epoch,
          topic: l.topics.data,
          from: l.from.toString(),
          end: l.end?.toString() ?? null,
        })),
      },
      `node ${name} catches up from ${from} to epoch ${chain.target.epoch}: ${chain.links.map((l) => l.topics.data).join(" → ")}`,
    );
  } else {
    logger.error(
      { reasons: chain.reasons },
      `node ${name} cannot follow the role changes from ${from} to epoch ${chain.target.epoch}`,
    );
  }
}
