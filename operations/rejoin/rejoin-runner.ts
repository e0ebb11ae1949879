import { writeFileSync } from "node:fs";
import type { Kafka } from "kafkajs";
import pg from "pg";
import {
  identifySource,
  replicatedSequences,
  resolveCaptureSlot,
  slotInfo,
} from "../../connectors/postgres-source/index.js";
import {
  advanceSequenceStatement,
  assertApplierStopped,
  latestRejoinReport,
  markRejoinRepaired,
  readPosition,
  recordRejoinReport,
  writePosition,
} from "../../connectors/postgres-standby/index.js";
import { formatLsn, type Lsn } from "../../src/change/lsn.js";
import type { DiffrelayConfig } from "../../src/config/config-schema.js";
import { asStandbyWriter, withLocalCommits } from "../../src/config/standby-session.js";
import { closeQuietly } from "../../src/errors/close-quietly.js";
import { partitionOffsets } from "../../src/kafka/topic-admin.js";
import type { SourceTopics } from "../../src/kafka/topic-names.js";
import { loadMigrations, runMigrations } from "../../src/migrations/migration-runner.js";
import type { Logger } from "../../src/observability/logger.js";
import { withValueFormat } from "../../src/sql/value-format.js";
import { computeSourceId } from "../../src/wire/envelope.js";
import {
  databaseOf,
  setDatabaseConnectable,
  setDatabaseReadOnly,
  writableSessionUrl,
} from "../promote/database-access.js";
import { endClientSessions } from "../promote/old-primary-fence.js";
import { TopicFollower } from "../verify/topic-follower.js";
import { followEpochChain } from "./chain-follower.js";
import type { ChainLink, EpochChain } from "./epoch-chain.js";
import { copyFromPrimary } from "./primary-copy.js";
import { RejoinDriftError, RejoinRefusedError } from "./rejoin-errors.js";
import { type RejoinReport, renderRejoinReport } from "./rejoin-report.js";
import { rewindBlockers, rewindStatements } from "./rewind-plan.js";
import {
  describeTransaction,
  findUnpublishedTransactions,
  type StreamTransaction,
} from "./unpublished-transactions.js";

export interface RejoinOptions {
  /** The settings an applier runs with: epochs between the old one and the new one are applied with them. */
  config: DiffrelayConfig;
  /** The old primary: the database that rejoins as a standby. */
  oldPrimaryUrl: string;
  oldPrimaryConfig: pg.ClientConfig;
  standbyName: string;
  newPrimaryUrl: string;
  newPrimaryConfig: pg.ClientConfig;
  kafka: Kafka;
  logger: Logger;
  /** The topics the old primary's capture published to. */
  oldTopics: SourceTopics;
  /** The new primary's topics, which the old primary follows from now on. */
  newTopics: SourceTopics;
  epoch: number;
  /** The capture's slot on both (unset: each database's default). */
  slot: string | undefined;
  publication: string;
  seed: { parallel: number; rangeRows: number };
  /** The report is also written here (JSON), before anything is repaired. */
  reportFile: string | undefined;
  /**
   * The cluster's epochs from the old one (its first link) to the new one (its
   * last), built by epochChain from the epochs' records: the old primary,
   * once its unpublished transactions are undone, applies each epoch between
   * them to its drained end before following the new topic; or why it cannot
   * (then it is re-seeded). Absent: the new epoch took over from the old one.
   */
  chain?: EpochChain;
}

const SESSION_END_MS = 30_000;
const TOPIC_READ_MS = 30_000;

/**
 * diffrelay's pg_rewind: makes a failed primary an exact standby of the new
 * one with the least copying.
 *
 * 1. It stops being a primary: its database refuses client writes
 *    (default_transaction_read_only, diffrelay's own sessions turn it off for
 *    themselves), accepts connections again if promote's fence closed them,
 *    and every client session is ended.
 * 2. The new primary's position on the old topic says which of the old
 *    primary's transactions it holds (commit LSN L). The old capture's slot
 *    still holds every transaction it never confirmed; those after L are the
 *    ones lost to the new primary. They are reported and the report committed
 *    (diffrelay.rejoin_report, and --report-file) before anything changes.
 * 3. The old primary minus those transactions is exactly the new primary as
 *    promote left it (every transaction up to L), which is where the new
 *    topic starts. So they are undone, last change first, from the old rows
 *    that REPLICA IDENTITY FULL put in the WAL, in one transaction with the
 *    standby position at the new topic's offset 0 and sequences moved up to
 *    the new primary's; the applier then replays the new epoch. No row is
 *    copied. When undoing is not possible (a schema change or TRUNCATE among
 *    them, a table not FULL, the slot gone, the new topic's start deleted by
 *    retention), it re-seeds from the new primary and says why.
 * 4. When the cluster moved more than once while the old primary was away
 *    (options.chain), the new primary's position on the old topic must be
 *    that topic's drained end (what the next epoch started from); the rewind
 *    positions it at the next epoch's topic instead, and each epoch between
 *    is applied to its drained end, checked, before the new topic. A chain
 *    that cannot be followed (a gap in the epochs' records, retention) is
 *    one more reason to re-seed.
 * 5. The old slot is dropped: it pins WAL, and the capture must not restart.
 */
export async function rejoinAsStandby(options: RejoinOptions): Promise<RejoinReport> {
  const { logger } = options;
  const oldConfig = withLocalCommits(asStandbyWriter(withValueFormat(options.oldPrimaryConfig)));
  const database = decodeURIComponent(new URL(options.oldPrimaryUrl).pathname.replace(/^\//, ""));
  const admin = options.kafka.admin();
  await admin.connect();
  try {
    // Its writes would race the repair, and rejoin ends every client session of the database.
    await assertApplierStopped(
      admin,
      options.standbyName,
      options.newTopics.data,
      (running) => new RejoinRefusedError(`${running}; stop it before rejoining`),
    );
  } finally {
    await closeQuietly(admin.disconnect());
  }
  await refuseClientWrites(oldConfig, database);
  const old = await connect(oldConfig);
  const fresh = await connect(options.newPrimaryConfig);
  try {
    await endClientSessions(old, database, SESSION_END_MS);
    const slot = await resolveCaptureSlot(old, options.slot);
    const slotState = await slotInfo(old, slot);
    if (slotState.active) {
      throw new RejoinRefusedError(
        `the old primary's slot "${slot}" is in use (walsender pid ${slotState.activePid}): its capture still runs; stop it, then run rejoin again`,
      );
    }
    const holds = await readPosition(fresh, options.oldTopics.data, 0);
    const after: Lsn = holds?.lastCommitLsn ?? 0n;
    // Read before rejoin writes anything itself: its own bookkeeping transactions are not the old primary's.
    const transactions =
      holds && slotState.exists
        ? await findUnpublishedTransactions(old, { slot, publication: options.publication, after })
        : [];

    await runMigrations(old, loadMigrations("standby"));
    const toFollow = linksAfterOld(options);
    if (await holdsAnyPosition(old, toFollow)) {
      const report = await finishEarlierRejoin(options, old, slotState.exists ? slot : null);
      await followAfterRepair(options, toFollow);
      return report;
    }

    const oldIdentity = await identifySource(old);
    const oldSourceId = computeSourceId(oldIdentity.systemIdentifier, oldIdentity.databaseName);
    if (holds?.sourceId != null && holds.sourceId !== oldSourceId) {
      throw new RejoinRefusedError(
        `${options.oldTopics.data} was not written by this database (the new primary's position there names source ${holds.sourceId.toString(16)}, this one is ${oldSourceId.toString(16)}): check --standby-url and the old epoch`,
      );
    }
    const reasons: string[] = [];
    if (!holds) {
      reasons.push(
        `the new primary has no position on ${options.oldTopics.data}: which of the old primary's transactions it holds is unknown`,
      );
    }
    if (!slotState.exists) {
      reasons.push(
        `the old primary has no slot "${slot}": what it committed and never published cannot be read back`,
      );
    }
    const inOldTopic = holds ? await commitLsnsPastDrain(options, holds.nextOffset) : new Set<Lsn>();
    const decoded = new Set(transactions.map((t) => t.commitLsn));
    const unreadable = [...inOldTopic].filter((lsn) => lsn > after && !decoded.has(lsn));
    if (unreadable.length > 0) {
      reasons.push(
        `transactions ${unreadable.map(formatLsn).join(", ")} reached ${options.oldTopics.data} after the new primary's position there, and the old slot already confirmed them: their changes cannot be read back`,
      );
    }
    reasons.push(...rewindBlockers(transactions));
    reasons.push(...(await chainBlockers(options, holds?.nextOffset ?? null)));

    const statements = reasons.length === 0 ? rewindStatements(transactions) : [];
    const report: RejoinReport = {
      standbyName: options.standbyName,
      oldTopic: options.oldTopics.data,
      newTopic: options.newTopics.data,
      epoch: options.epoch,
      newPrimaryHoldsLsn: holds ? formatLsn(holds.lastCommitLsn) : "unknown",
      unpublished: transactions.map((t) => describeTransaction(t, inOldTopic.has(t.commitLsn))),
      method: reasons.length === 0 ? "rewind" : "reseed",
      reseedReasons: reasons,
      rowsRewound: transactions.reduce((n, t) => n + t.changes.length, 0),
      tablesReseeded: [],
      droppedSlot: slotState.exists ? slot : null,
      reportId: "",
      followed:
        reasons.length === 0
          ? toFollow.slice(0, -1).map((l) => ({
              topic: l.topics.data,
              epoch: l.epoch,
              endOffset: (l.end as bigint).toString(),
            }))
          : [],
    };
    report.reportId = await recordRejoinReport(old, report.oldTopic, report.newTopic, report);
    if (options.reportFile) writeFileSync(options.reportFile, `${JSON.stringify(report, null, 2)}\n`);
    logUnpublished(logger, report, transactions);

    if (report.method === "rewind") {
      await rewind(options, old, fresh, statements, report.reportId, toFollow[0] as ChainLink);
    } else {
      logger.error({ reasons }, "rejoin cannot rewind the old primary: re-seeding it from the new primary");
      report.tablesReseeded = await reseed(options, report.reportId, old);
    }
    // Before the epochs between are applied: a restart in the middle finds a standby, not a stale primary.
    if (report.droppedSlot) await old.query("SELECT pg_catalog.pg_drop_replication_slot($1)", [slot]);
    if (report.method === "rewind") await followAfterRepair(options, toFollow);
    logger.info({ report }, renderRejoinReport(report));
    return report;
  } finally {
    await closeQuietly(old.end());
    await closeQuietly(fresh.end());
  }
}

async function connect(config: pg.ClientConfig): Promise<pg.Client> {
  const client = new pg.Client(config);
  client.on("error", () => undefined);
  await client.connect();
  return client;
}

/** Read-only by default first, then connections again (promote's fence may have closed them). */
async function refuseClientWrites(config: pg.ClientConfig, database: string): Promise<void> {
  if (databaseOf(config) !== database)
    throw new Error(`rejoin: the old primary's URL names database ${databaseOf(config)}, not ${database}`);
  await setDatabaseReadOnly(config, true);
  await setDatabaseConnectable(config, true);
}

/**
 * The topics the rewound old primary applies, from the one after its own to
 * the new one (whose start the rewind positions it at when it is the only one).
 */
function linksAfterOld(options: RejoinOptions): ChainLink[] {
  if (options.chain?.kind === "follow") return options.chain.links.slice(1);
  return [{ epoch: options.epoch, topics: options.newTopics, from: 0n, end: null }];
}

async function holdsAnyPosition(old: pg.Client, links: ChainLink[]): Promise<boolean> {
  for (const link of links) if (await readPosition(old, link.topics.data, 0)) return true;
  return false;
}

/** Why the rewound old primary could not follow the epochs from its own to the new one. */
async function chainBlockers(options: RejoinOptions, heldOffset: bigint | null): Promise<string[]> {
  const chain = options.chain;
  if (chain?.kind === "reseed") return chain.reasons;
  if (chain?.kind === "follow") {
    // Rewound to what the new primary holds of the old topic, it must hold what the next epoch started
    // from. When the new epoch is the next one, its primary's position is that, by definition.
    const drained = (chain.links[0] as ChainLink).end as bigint;
    return chain.links.length <= 2 || heldOffset === null || heldOffset === drained
      ? []
      : [
          `the new primary holds ${options.oldTopics.data} up to offset ${heldOffset}, not its drained end ${drained}: ` +
            "the old primary rewound to it would not hold what the next epoch started from",
        ];
  }
  const admin = options.kafka.admin();
  await admin.connect();
  try {
    const low = (await partitionOffsets(admin, options.newTopics.data)).low;
    return low > 0n
      ? [
          `${options.newTopics.data} no longer starts at offset 0 (retention deleted up to ${low}): the new epoch cannot be replayed`,
        ]
      : [];
  } finally {
    await closeQuietly(admin.disconnect());
  }
}

/** The epochs between the old one and the new one, each to its drained end; positioned on the new topic. */
async function followAfterRepair(options: RejoinOptions, links: ChainLink[]): Promise<void> {
  if (links.length < 2) return;
  await followEpochChain({
    config: options.config,
    kafka: options.kafka,
    logger: options.logger,
    standby: { name: options.standbyName, url: writableSessionUrl(options.oldPrimaryUrl) },
    links,
  });
}

/** Commit LSNs of the old topic from the new primary's next offset there to its end. */
async function commitLsnsPastDrain(options: RejoinOptions, from: bigint): Promise<Set<Lsn>> {
  const admin = options.kafka.admin();
  await admin.connect();
  const end = await partitionOffsets(admin, options.oldTopics.data)
    .then((o) => o.high)
    .finally(() => closeQuietly(admin.disconnect()));
  if (end <= from) return new Set();
  const follower = new TopicFollower(options.kafka, options.oldTopics.data, from);
  try {
    await follower.start();
    const deadline = Date.now() + TOPIC_READ_MS;
    while (follower.readUpTo < end) {
      if (Date.now() > deadline) {
        throw new RejoinRefusedError(
          `could not read ${options.oldTopics.data} offsets ${from}..${end - 1n} within ${TOPIC_READ_MS} ms (read up to ${follower.readUpTo}): is Kafka reachable?`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return new Set(follower.commitLsnsFrom(from));
  } finally {
    await follower.stop();
  }
}

function logUnpublished(logger: Logger, report: RejoinReport, transactions: StreamTransaction[]): void {
  for (const t of report.unpublished) {
    logger.warn(
      { commitLsn: t.commitLsn, xid: t.xid, changes: t.changes, truncated: t.truncated, ddl: t.ddl },
      `the old primary committed ${t.commitLsn} and it never reached the new primary`,
    );
  }
  logger.warn(
    { reportId: report.reportId, transactions: transactions.length, method: report.method },
    `rejoin: ${transactions.length} transaction(s) of the old primary are not on the new primary; recorded in diffrelay.rejoin_report id ${report.reportId}`,
  );
}

/** The undo, sequences and the position on the new topic: one transaction. */
async function rewind(
  options: RejoinOptions,
  old: pg.Client,
  fresh: pg.Client,
  statements: ReturnType<typeof rewindStatements>,
  reportId: string,
  first: ChainLink,
): Promise<void> {
  const identity = await identifySource(fresh);
  const sequences = await replicatedSequences(fresh, options.publication);
  await old.query("BEGIN");
  try {
    await old.query("SET LOCAL session_replication_role = replica");
    for (const s of statements) {
      const result = await old.query(s.sql, s.params);
      if (result.rowCount !== s.expectedRows) {
        throw new RejoinDriftError(
          `undoing ${s.describes} touched ${result.rowCount} rows, not ${s.expectedRows}: the old primary's rows are not what its WAL says (changed since?); nothing was repaired: re-seed it (diffrelay seed) from the new primary`,
        );
      }
    }
    // The new primary advanced its sequences at promote: none may end lower here.
    for (const [index, position] of sequences.entries()) {
      const statement = advanceSequenceStatement({ ...position, isCalled: true }, index, 0);
      await old.query(statement.sql, statement.params as unknown[]);
    }
    // The new primary's own topic names it as source; an epoch between names its own primary (the applier takes it).
    const isNew = first.topics.data === options.newTopics.data;
    await writePosition(old, options.standbyName, {
      topic: first.topics.data,
      partition: 0,
      nextOffset: 0n,
      lastCommitLsn: 0n,
      lastCommitTimeMicros: null,
      sourceId: isNew ? computeSourceId(identity.systemIdentifier, identity.databaseName) : null,
      epoch: first.epoch,
    });
    await markRejoinRepaired(old, reportId);
    await old.query("COMMIT");
  } catch (err) {
    // The repair's own error is the one rethrown; a ROLLBACK that fails means the session is gone,
    // and the server rolls the transaction back with it.
    await old.query("ROLLBACK").catch(() => undefined);
    throw err;
  }
}

/** A full copy from the new primary at a snapshot, with its exact position; returns the tables copied. */
async function reseed(options: RejoinOptions, reportId: string, old: pg.Client): Promise<string[]> {
  const tables = await copyFromPrimary({
    kafka: options.kafka,
    source: { url: options.newPrimaryUrl, config: options.newPrimaryConfig },
    standby: { name: options.standbyName, url: options.oldPrimaryUrl, config: options.oldPrimaryConfig },
    topics: options.newTopics,
    epoch: options.epoch,
    publication: options.publication,
    slot: options.slot,
    seed: options.seed,
  });
  await markRejoinRepaired(old, reportId);
  return tables;
}

/** A previous run repaired it (its position on the new topic is there): only the slot may remain. */
async function finishEarlierRejoin(
  options: RejoinOptions,
  old: pg.Client,
  slot: string | null,
): Promise<RejoinReport> {
  const earlier = await latestRejoinReport(old, options.newTopics.data);
  if (slot) await old.query("SELECT pg_catalog.pg_drop_replication_slot($1)", [slot]);
  const base = (earlier?.report ?? {}) as Partial<RejoinReport>;
  return {
    standbyName: options.standbyName,
    oldTopic: options.oldTopics.data,
    newTopic: options.newTopics.data,
    epoch: options.epoch,
    newPrimaryHoldsLsn: base.newPrimaryHoldsLsn ?? "unknown",
    unpublished: base.unpublished ?? [],
    method: "already-rejoined",
    reseedReasons: [],
    rowsRewound: 0,
    tablesReseeded: [],
    droppedSlot: slot,
    reportId: earlier?.id ?? "none",
  };
}
