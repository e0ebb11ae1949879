import type { Kafka } from "kafkajs";
import { assertApplierStopped, readPosition } from "../../connectors/postgres-standby/index.js";
import { formatLsn } from "../../src/change/lsn.js";
import type { DiffrelayConfig } from "../../src/config/config-schema.js";
import { postgresClientConfig } from "../../src/config/postgres-connection.js";
import { closeQuietly } from "../../src/errors/close-quietly.js";
import { DiffrelayError } from "../../src/errors/diffrelay-error.js";
import { partitionOffsets } from "../../src/kafka/topic-admin.js";
import type { SourceTopics } from "../../src/kafka/topic-names.js";
import type { Logger } from "../../src/observability/logger.js";
import { TopicFollower } from "../verify/topic-follower.js";
import { captureLastKnown } from "./capture-last-known.js";
import { fenceOldPrimary, type OldPrimaryState } from "./old-primary-fence.js";
import {
  becomeSource,
  drainStandby,
  pointStandbyAt,
  type StandbyTarget,
  withDatabase,
} from "./promote-steps.js";
import type { AdvancedSequence } from "./sequence-advancer.js";

export type { StandbyTarget } from "./promote-steps.js";

export interface PromoteOptions {
  config: DiffrelayConfig;
  kafka: Kafka;
  logger: Logger;
  promoted: StandbyTarget;
  others: StandbyTarget[];
  /** The old primary, when it is known; it may be gone. */
  oldSourceUrl: string | undefined;
  oldTopics: SourceTopics;
  newTopics: SourceTopics;
  newEpoch: number;
  /** The capture's /status, for the last known slot lag when the old primary is gone. */
  captureStatusUrl: string | undefined;
}

export interface PromoteReport {
  oldPrimary: OldPrimaryState | { alive: "unknown" };
  /** The last source transaction the promoted standby holds (commit LSN on the old primary). */
  holdsSourceLsn: string;
  oldTopicEndOffset: string;
  sequencesAdvanced: AdvancedSequence[];
  newTopic: string;
  newEpoch: number;
  repointed: string[];
}

/** A refusal that leaves everything as it was: nothing was changed. */
export class PromoteRefusedError extends DiffrelayError {
  override readonly name = "PromoteRefusedError";

  constructor(message: string, options?: { cause?: unknown }) {
    super("setup", message, options);
  }
}

/**
 * Failover or switchover to one standby, in the order that loses nothing the
 * old capture acknowledged: stop the old stream, drain every standby to the end
 * of the old topic, advance the promoted standby's sequences, make it a source
 * (publication, slot, DDL capture) with a topic of the next epoch, and re-point
 * the other standbys, which hold the same source position by construction.
 */
export async function promote(options: PromoteOptions): Promise<PromoteReport> {
  const { config, kafka, logger } = options;
  const admin = kafka.admin();
  await admin.connect();
  try {
    for (const standby of [options.promoted, ...options.others]) {
      await assertApplierStopped(
        admin,
        standby.name,
        options.oldTopics.data,
        (running) => new PromoteRefusedError(`${running}; stop it: promote drains every standby itself`),
      );
    }

    const oldPrimary = options.oldSourceUrl
      ? await fenceOldPrimary({
          config: postgresClientConfig(options.oldSourceUrl, config.source?.tls),
          slot: config.capture.slot,
          publication: config.capture.publication,
          timeoutMs: 60_000,
          lastKnownSlotLag: async () => (await captureLastKnown(options.captureStatusUrl)).slotLagBytes,
        })
      : ({ alive: "unknown" } as const);
    logger.info({ oldPrimary }, "old stream stopped");

    // Everything the old capture acknowledged is below this offset; nothing more will come.
    const end = (await partitionOffsets(admin, options.oldTopics.data)).high;
    for (const standby of [options.promoted, ...options.others]) {
      await drainStandby({ config, kafka: options.kafka, logger, standby, topics: options.oldTopics, end });
    }
    if (oldPrimary.alive === true) await assertNothingPastEnd(options, admin, end);

    const promoted = await withDatabase(options.promoted.url, config, (c) =>
      readPosition(c, options.oldTopics.data, 0),
    );
    if (!promoted)
      throw new PromoteRefusedError(
        `standby ${options.promoted.name} has no position on ${options.oldTopics.data}`,
      );
    for (const other of options.others) {
      const position = await withDatabase(other.url, config, (c) =>
        readPosition(c, options.oldTopics.data, 0),
      );
      if (position?.lastCommitLsn !== promoted.lastCommitLsn) {
        throw new PromoteRefusedError(
          `standby ${other.name} holds source position ${position ? formatLsn(position.lastCommitLsn) : "none"}, not ${formatLsn(promoted.lastCommitLsn)} like ${options.promoted.name}: re-seed it from the new primary`,
        );
      }
    }

    const { sequencesAdvanced, sourceId } = await becomeSource({
      config,
      admin,
      logger,
      url: options.promoted.url,
      newTopics: options.newTopics,
    });
    for (const other of options.others) {
      await pointStandbyAt({
        config,
        standby: other,
        topics: options.newTopics,
        sourceId,
        epoch: options.newEpoch,
      });
    }
    return {
      oldPrimary,
      holdsSourceLsn: formatLsn(promoted.lastCommitLsn),
      oldTopicEndOffset: end.toString(),
      sequencesAdvanced,
      newTopic: options.newTopics.data,
      newEpoch: options.newEpoch,
      repointed: options.others.map((o) => o.name),
    };
  } finally {
    await closeQuietly(admin.disconnect());
  }
}

/**
 * The fence leaves nothing able to commit on the old primary's database, but
 * "nothing lost" is only printed once the topic says so: a transaction the
 * capture published past the drained end committed after the fence and is on
 * no standby.
 */
async function assertNothingPastEnd(
  options: PromoteOptions,
  admin: ReturnType<Kafka["admin"]>,
  end: bigint,
): Promise<void> {
  const past = await publishedPastEnd(options.kafka, admin, options.oldTopics.data, end);
  if (past === null) return;
  throw new PromoteRefusedError(
    `the old primary committed past the drained end after it was fenced: ${describePastEnd(options.oldTopics.data, end, past)} are on no standby. ` +
      "Find what wrote them (a background worker, or a session that bypassed ALLOW_CONNECTIONS), stop it, and run promote again: it drains them too",
  );
}

/** What the old topic holds past `end`: its end now and the commit LSNs there; null when it did not grow. */
export async function publishedPastEnd(
  kafka: Kafka,
  admin: ReturnType<Kafka["admin"]>,
  topic: string,
  end: bigint,
): Promise<{ now: bigint; commitLsns: string[] } | null> {
  const now = (await partitionOffsets(admin, topic)).high;
  if (now <= end) return null;
  const follower = new TopicFollower(kafka, topic, end);
  let commitLsns: string[] = [];
  try {
    await follower.start();
    const deadline = Date.now() + 30_000;
    while (follower.readUpTo < now && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    commitLsns = [...follower.commitLsnsFrom(end)].map(formatLsn);
  } finally {
    await follower.stop();
  }
  return { now, commitLsns };
}

export function describePastEnd(
  topic: string,
  end: bigint,
  past: { now: bigint; commitLsns: string[] },
): string {
  const lsns =
    past.commitLsns.length > 0 ? past.commitLsns.join(", ") : "unknown: the messages could not be read";
  return `${topic} offsets ${end}..${past.now - 1n} (commit LSNs ${lsns})`;
}
