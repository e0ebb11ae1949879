import type { Kafka } from "kafkajs";
import pg from "pg";
import type { DiffrelayConfig } from "../../src/config/config-schema.js";
import { postgresClientConfig } from "../../src/config/postgres-connection.js";
import { closeQuietly } from "../../src/errors/close-quietly.js";
import type { SourceTopics } from "../../src/kafka/topic-names.js";
import type { Logger } from "../../src/observability/logger.js";
import { redact } from "../../src/observability/redact.js";
import { type CaptureLastKnown, captureLastKnown } from "../promote/capture-last-known.js";
import {
  describePastEnd,
  type PromoteReport,
  promote,
  publishedPastEnd,
  type StandbyTarget,
} from "../promote/promote-runner.js";
import type { AdvancedSequence } from "../promote/sequence-advancer.js";
import { FailoverDivergedError, FailoverRefusedError, lossReport, type MayBeLost } from "./failover-loss.js";

export interface FailoverOptions {
  config: DiffrelayConfig;
  kafka: Kafka;
  logger: Logger;
  /** The standby to promote. */
  to: StandbyTarget;
  /** Every other standby; the reachable ones are drained and re-pointed. */
  others: StandbyTarget[];
  /** The old primary: failover runs only when it does not answer. */
  oldSourceUrl: string;
  /** The old capture's /status: its last known slot lag and zero-loss mode. */
  captureStatusUrl: string | undefined;
  oldTopics: SourceTopics;
  newTopics: SourceTopics;
  newEpoch: number;
}

/**
 * - `promoted`: zero-loss mode was on, so every commit a client saw acknowledged is on every re-pointed standby;
 * - `promoted-possible-loss`: the old primary may have committed transactions Kafka never got
 *   (zero-loss mode off, or not known): up to `mayBeLost.slotLagBytes` of WAL.
 */
export type FailoverOutcome = "promoted" | "promoted-possible-loss";

export interface FailoverReport {
  outcome: FailoverOutcome;
  promoted: string;
  newEpoch: number;
  newTopic: string;
  /** The last source transaction every re-pointed standby holds (commit LSN on the old primary). */
  holdsSourceLsn: string;
  oldTopicEndOffset: string;
  oldPrimary: { reachable: false; reason: string; lastKnown: CaptureLastKnown };
  mayBeLost: MayBeLost;
  repointed: string[];
  /** Standbys that did not answer: neither drained nor re-pointed; they still follow the old topic. */
  unreachable: { name: string; reason: string }[];
  sequencesAdvanced: AdvancedSequence[];
}

const PROBE_TIMEOUT_MS = 5000;

/**
 * Failover for an unreachable primary: checks that it does not answer (one
 * that does is switched over instead, with its fence), finds which standbys
 * answer, then promotes through `promote` (drain every reachable standby to
 * the old topic's end, check they hold the same source position, advance
 * sequences, make the chosen one a source with the next epoch's topic,
 * re-point the others) and reports what the old primary may have committed
 * that Kafka never got.
 */
export async function failover(options: FailoverOptions): Promise<FailoverReport> {
  const { config, logger } = options;
  const oldPrimary = await probe(postgresClientConfig(options.oldSourceUrl, config.source?.tls));
  if (oldPrimary === null) {
    throw new FailoverRefusedError(
      `the old primary answers (${redact(options.oldSourceUrl)}): failover is for a primary that is gone, and nothing was changed. ` +
        "Switch over instead (diffrelay promote --source-url fences it first, so nothing it committed is lost)",
    );
  }
  const target = await probe(postgresClientConfig(options.to.url, config.standby?.tls));
  if (target !== null) {
    throw new FailoverRefusedError(
      `the standby to promote, ${options.to.name}, does not answer (${target}): nothing was changed; choose another with --to`,
    );
  }
  const lastKnown = await captureLastKnown(options.captureStatusUrl);
  const reachable: StandbyTarget[] = [];
  const unreachable: { name: string; reason: string }[] = [];
  for (const other of options.others) {
    const reason = await probe(postgresClientConfig(other.url, config.standby?.tls));
    if (reason === null) reachable.push(other);
    else unreachable.push({ name: other.name, reason });
  }
  for (const u of unreachable) logger.warn(u, "standby unreachable: not drained, not re-pointed");

  const promoted: PromoteReport = await promote({
    config,
    kafka: options.kafka,
    logger,
    promoted: options.to,
    others: reachable,
    oldSourceUrl: undefined,
    oldTopics: options.oldTopics,
    newTopics: options.newTopics,
    newEpoch: options.newEpoch,
    captureStatusUrl: undefined,
  });

  // The old primary may have come back meanwhile, with its capture still running.
  const admin = options.kafka.admin();
  await admin.connect();
  try {
    const end = BigInt(promoted.oldTopicEndOffset);
    const past = await publishedPastEnd(options.kafka, admin, options.oldTopics.data, end);
    if (past !== null) {
      throw new FailoverDivergedError(
        `${options.to.name} was promoted (epoch ${options.newEpoch}, topic ${options.newTopics.data}), but the old primary came back and its capture published past the drained end: ` +
          `${describePastEnd(options.oldTopics.data, end, past)} are on no standby. Stop the old capture and keep the old primary from accepting writes; ` +
          "those transactions are to be reconciled by hand or by the old primary's rejoin",
      );
    }
  } finally {
    await closeQuietly(admin.disconnect());
  }

  const loss = lossReport(lastKnown);
  return {
    outcome: loss.acknowledgedCommits === "none" ? "promoted" : "promoted-possible-loss",
    promoted: options.to.name,
    newEpoch: promoted.newEpoch,
    newTopic: promoted.newTopic,
    holdsSourceLsn: promoted.holdsSourceLsn,
    oldTopicEndOffset: promoted.oldTopicEndOffset,
    oldPrimary: { reachable: false, reason: oldPrimary, lastKnown },
    mayBeLost: loss,
    repointed: promoted.repointed,
    unreachable,
    sequencesAdvanced: promoted.sequencesAdvanced,
  };
}

/** null when the server answers a query; otherwise why not. */
async function probe(config: pg.ClientConfig): Promise<string | null> {
  const client = new pg.Client({ ...config, connectionTimeoutMillis: PROBE_TIMEOUT_MS });
  client.on("error", () => undefined);
  try {
    await client.connect();
    await client.query("SELECT 1");
    return null;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await closeQuietly(client.end());
  }
}
