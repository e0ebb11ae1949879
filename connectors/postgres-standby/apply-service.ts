import { setTimeout as sleep } from "node:timers/promises";
import type { Admin, Consumer, EachBatchPayload, Kafka } from "kafkajs";
import pg from "pg";
import { formatLsn, type Lsn } from "../../src/change/lsn.js";
import type { DiffrelayConfig } from "../../src/config/config-schema.js";
import { postgresClientConfig } from "../../src/config/postgres-connection.js";
import { asStandbyWriter } from "../../src/config/standby-session.js";
import { closeQuietly } from "../../src/errors/close-quietly.js";
import { RepeatedFailureGuard, type Stall } from "../../src/errors/repeated-failure-guard.js";
import { SchemaCatalog } from "../../src/kafka/schema-topic.js";
import { partitionOffsets } from "../../src/kafka/topic-admin.js";
import { applierGroupId, type SourceTopics } from "../../src/kafka/topic-names.js";
import { loadMigrations, runMigrations } from "../../src/migrations/migration-runner.js";
import type { Logger } from "../../src/observability/logger.js";
import { ReconnectBackoff } from "../../src/retry/reconnect-backoff.js";
import { runReconnecting } from "../../src/retry/reconnect-loop.js";
import { applyBatch, TopicCursor } from "./apply-batch.js";
import { type ApplyMetrics, recordPosition } from "./apply-metrics.js";
import { DeadLetterSender } from "./dead-letter-sender.js";
import { DeferredCommands } from "./deferred-commands.js";
import { requireAssignedPartition } from "./group-assignment.js";
import { PauseGate, type PauseRecord } from "./pause-gate.js";
import { requireOffsetInTopic, SeedInterruptedError, TopicGapError } from "./position-errors.js";
import {
  type ApplyPosition,
  liftPause,
  markPausedAt,
  positionCommit,
  readPausePoint,
  readPauseRequest,
  readPosition,
  seedInProgress,
} from "./position-store.js";
import { PgStandbyTransaction } from "./standby-transaction.js";
import { TransactionApplier } from "./transaction-applier.js";
import { TransactionGrouper } from "./transaction-grouper.js";

export interface ApplyStatus {
  role: "apply";
  standby: string;
  topic: string;
  nextOffset: string;
  endOffset: string;
  offsetLag: number;
  lastCommitLsn: string;
  lastCommitTime: string | null;
  timeLagSeconds: number | null;
  flowing: boolean;
  lastError: string | null;
  /** Set while the same failure keeps recurring at the standby's position. */
  stalled: Stall | null;
}

interface ApplyServiceDeps {
  config: DiffrelayConfig;
  standbyName: string;
  standbyUrl: string;
  topics: SourceTopics;
  kafka: Kafka;
  logger: Logger;
  metrics: ApplyMetrics;
  /**
   * Drain mode (promote): apply what the topic holds below this offset, then
   * stop. The topic's old source is gone, so nothing more will come.
   */
  drainTo?: bigint;
}

const SCHEMA_WAIT_MS = 30_000;
const KAFKA_OFFSET_COMMIT_INTERVAL_MS = 10_000;
const PAUSE_REQUEST_POLL_MS = 100;
/** Also how long seed and promote wait for a stopped applier's group membership to end. */
export const APPLIER_SESSION_TIMEOUT_MS = 10_000;

/** What one session opened; each is closed when the session ends, however far it got. */
interface Session {
  client: pg.Client;
  admin: Admin;
  deadLetters: DeadLetterSender | null;
  catalog: SchemaCatalog | null;
  grouper: TransactionGrouper | null;
  consumer: Consumer | null;
  /** Settled once the consumer's run() has: its group join ended, joined or not. */
  joined: Promise<void>;
  /** The batch kafkajs handed over last; settled once it is applied, halted or failed. */
  batch: Promise<void>;
}

interface Pipeline {
  catalog: SchemaCatalog;
  grouper: TransactionGrouper;
  gate: PauseGate;
  consumer: Consumer;
}

/**
 * How a consuming session ends: stop() or the drain's end finish it, the
 * first failure (a batch, kafkajs's CRASH, run() or seek()) rejects it.
 */
class SessionEnd {
  failed = false;
  finished = false;
  readonly promise: Promise<void>;
  private resolve: () => void = () => undefined;
  private reject: (err: unknown) => void = () => undefined;

  constructor() {
    this.promise = new Promise<void>((resolve, reject) => {
      this.resolve = resolve;
      this.reject = reject;
    });
  }

  finish(): void {
    this.finished = true;
    this.resolve();
  }

  get over(): boolean {
    return this.finished || this.failed;
  }

  fail(err: unknown): void {
    if (this.failed) return;
    this.failed = true;
    this.reject(err);
  }
}

/**
 * Follows the source's topic and applies it to one standby. The position is
 * read from the standby at every (re)start, so a crash anywhere resumes
 * exactly after the last committed standby transaction.
 */
export class ApplyService {
  private stopping = false;
  private endOffset = 0n;
  private position: ApplyPosition | null = null;
  private lastError: string | null = null;
  private lastProgressAt = Date.now();
  private sessionLive = false;
  private stopSession: (() => void) | null = null;
  private heartbeat: (() => Promise<void>) | null = null;
  private readonly backoff = new ReconnectBackoff();
  private readonly failures: RepeatedFailureGuard;

  constructor(private readonly deps: ApplyServiceDeps) {
    this.failures = new RepeatedFailureGuard(deps.config.stallAfter);
    deps.metrics.reportHealthFrom(() => this.isFlowing());
    deps.metrics.reportStallFrom(() => this.failures.stall !== null);
  }

  status(): ApplyStatus {
    const p = this.position;
    const next = p?.nextOffset ?? 0n;
    const commitMicros = p?.lastCommitTimeMicros ?? null;
    const lag = Number(this.endOffset > next ? this.endOffset - next : 0n);
    return {
      role: "apply",
      standby: this.deps.standbyName,
      topic: this.deps.topics.data,
      nextOffset: next.toString(),
      endOffset: this.endOffset.toString(),
      offsetLag: lag,
      lastCommitLsn: formatLsn(p?.lastCommitLsn ?? 0n),
      lastCommitTime: commitMicros === null ? null : new Date(Number(commitMicros / 1000n)).toISOString(),
      timeLagSeconds: commitMicros === null || lag === 0 ? 0 : Date.now() / 1000 - Number(commitMicros) / 1e6,
      flowing: this.isFlowing(),
      lastError: this.lastError,
      stalled: this.failures.stall,
    };
  }

  isFlowing(): boolean {
    if (this.failures.stall !== null) return false;
    const caughtUp = (this.position?.nextOffset ?? 0n) >= this.endOffset;
    return this.sessionLive && (caughtUp || Date.now() - this.lastProgressAt < 60_000);
  }

  async run(): Promise<void> {
    await runReconnecting({
      session: () => this.runSession(),
      stopping: () => this.stopping,
      position: () => this.describePosition(),
      backoff: this.backoff,
      failures: this.failures,
      metrics: this.deps.metrics,
      logger: this.deps.logger,
      retryMessage: "apply session ended; resuming from the standby's position",
      onFailure: (err, description) => {
        this.lastError = description;
        if (err instanceof TopicGapError) this.deps.metrics.topicGap.set(1);
      },
    });
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.backoff.interrupt();
    this.stopSession?.();
  }

  /** Where a failed session would resume: the standby's position. */
  private describePosition(): string {
    return `topic ${this.deps.topics.data} partition 0 offset ${this.position?.nextOffset ?? "(none yet)"}`;
  }

  private async runSession(): Promise<void> {
    const session = await this.openSession();
    try {
      const start = await this.resolveStart(session);
      if (start === null) return;
      const { catalog, grouper, gate, consumer } = await this.buildPipeline(session, start);
      const stopWatching = this.watchPauseRequests(gate);
      try {
        await this.consume(session, consumer, catalog, grouper, start);
      } finally {
        stopWatching();
      }
    } finally {
      this.sessionLive = false;
      await closeSession(session);
    }
  }

  private async openSession(): Promise<Session> {
    const { config, kafka } = this.deps;
    const client = new pg.Client(
      asStandbyWriter(postgresClientConfig(this.deps.standbyUrl, config.standby?.tls)),
    );
    // A broken connection also rejects the query in flight, which ends the session.
    client.on("error", () => undefined);
    await client.connect();
    return {
      client,
      admin: kafka.admin(),
      deadLetters: null,
      catalog: null,
      grouper: null,
      consumer: null,
      joined: Promise.resolve(),
      batch: Promise.resolve(),
    };
  }

  /** Where this session starts: the standby's position; null when a drain has nothing left to apply. */
  private async resolveStart({ client, admin }: Session): Promise<ApplyPosition | null> {
    const { topics, logger } = this.deps;
    await runMigrations(client, loadMigrations("standby"));
    await this.refuseInterruptedSeed(client);
    await admin.connect();
    await this.waitForTopics(admin);
    const offsets = await partitionOffsets(admin, topics.data);
    const start = (await readPosition(client, topics.data, 0)) ?? this.initialPosition(offsets);
    this.position = start;
    recordPosition(this.deps.metrics, start);
    requireOffsetInTopic(topics.data, 0, start.nextOffset, offsets);
    this.endOffset = offsets.high;
    if (this.deps.drainTo !== undefined && start.nextOffset >= this.deps.drainTo) {
      this.stopping = true;
      return null;
    }
    logger.info(
      {
        topic: topics.data,
        nextOffset: start.nextOffset.toString(),
        lastCommitLsn: formatLsn(start.lastCommitLsn),
      },
      "applying from the standby's position",
    );
    return start;
  }

  /** Dead letters, schemas and applier, pause gate, grouper, consumer: each recorded in the session as it opens. */
  private async buildPipeline(session: Session, start: ApplyPosition): Promise<Pipeline> {
    const { config, kafka, metrics, topics, standbyName } = this.deps;
    const { client, admin } = session;
    if (config.apply.deadLetterTopic) {
      session.deadLetters = await DeadLetterSender.open(
        kafka,
        admin,
        config.apply.deadLetterTopic,
        topics.data,
      );
    }
    const deadLetters = session.deadLetters;
    // Unknown until the first message when the standby's position has none.
    let sourceId = start.sourceId ?? undefined;
    const { applier, catalog } = await this.startApplier(session, () => sourceId);
    const gate = this.pauseGate(client);
    // The group's BEGIN and the applier's savepoint releases ride along with the next exchange.
    const deferred = new DeferredCommands();
    const grouper = new TransactionGrouper({
      transaction: new PgStandbyTransaction(client, standbyName, deferred),
      position: start,
      maxRowsPerTransaction: config.apply.maxRowsPerTransaction,
      maxGroupMs: config.apply.maxGroupMs,
      maxPendingChanges: config.apply.maxRowsPerStatement * 4,
      apply: async (changes, positions) => {
        await applier.applyChanges(client, changes, positions, deferred);
      },
      applyAndCommit: (changes, positions, position) =>
        applier.applyChanges(client, changes, positions, deferred, positionCommit(standbyName, position)),
      applyAlone: (change, position) => applier.applyOutsideTransaction(client, change, position),
      metrics,
      pauseGate: gate,
      deadLetter: deadLetters?.send.bind(deadLetters),
      onStaleMessage: (offset, problem) =>
        this.deps.logger.warn({ topic: topics.data, offset: offset.toString() }, `message ${problem}`),
      expectSource: (id) => {
        sourceId = id;
      },
    });
    session.grouper = grouper;
    return { catalog, grouper, gate, consumer: await this.subscribe(session) };
  }

  /** The schema catalog (definitions from `sourceId` only) and the applier that reads it. */
  private async startApplier(
    session: Session,
    sourceId: () => bigint | undefined,
  ): Promise<{ applier: TransactionApplier; catalog: SchemaCatalog }> {
    const { config, kafka, logger, metrics, topics } = this.deps;
    const catalog = new SchemaCatalog(kafka, topics.schemas, sourceId);
    session.catalog = catalog;
    await catalog.start();
    const applier = new TransactionApplier({
      schemas: (ref) => catalog.get(ref, SCHEMA_WAIT_MS),
      maxRowsPerStatement: config.apply.maxRowsPerStatement,
      metrics,
      onDrift: config.apply.onDrift,
      onDriftLogged: (drift) => {
        metrics.drift.inc();
        logger.error({ err: drift }, "drift (continuing because on-drift is log)");
      },
      onSequenceMissing: (sequence) => {
        logger.warn(
          { sequence },
          `sequence ${sequence} is published but the standby has none: its position is skipped until it exists; create it (or re-seed) before promoting this standby, or it may hand out used values`,
        );
      },
    });
    await applier.prepareSession(session.client);
    return { applier, catalog };
  }

  private pauseGate(client: pg.Client): PauseGate {
    return new PauseGate({
      record: standbyPauseRecord(client, this.deps.topics.data),
      wait: (ms) => this.backoff.pause(ms),
      heartbeat: async () => {
        await this.heartbeat?.();
      },
      stopping: () => this.stopping,
      logger: this.deps.logger,
    });
  }

  private async subscribe(session: Session): Promise<Consumer> {
    const { kafka, topics, standbyName } = this.deps;
    const consumer = kafka.consumer({
      groupId: applierGroupId(standbyName, topics.data),
      maxWaitTimeInMs: 100,
      allowAutoTopicCreation: false,
      retry: { retries: 5 },
      // A killed applier's membership must expire quickly: its restart waits for it.
      sessionTimeout: APPLIER_SESSION_TIMEOUT_MS,
      heartbeatInterval: 1000,
    });
    session.consumer = consumer;
    await consumer.connect();
    await consumer.subscribe({ topic: topics.data, fromBeginning: true });
    return consumer;
  }

  /** Runs the consumer until stop(), the drain's end or a failure, which rejects. */
  private async consume(
    session: Session,
    consumer: Consumer,
    catalog: SchemaCatalog,
    grouper: TransactionGrouper,
    start: ApplyPosition,
  ): Promise<void> {
    // A stop that came during start-up has no session to end yet: end this one at once.
    if (this.stopping) return;
    const end = new SessionEnd();
    this.stopSession = () => end.finish();
    consumer.on(consumer.events.CRASH, ({ payload }) => end.fail(payload.error));
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      try {
        requireAssignedPartition(payload.groupId, this.deps.topics.data, 0, payload.memberAssignment);
      } catch (err) {
        end.fail(err);
      }
    });
    const commitOffsets = this.dashboardOffsetCommits(consumer);
    const cursor = new TopicCursor(this.deps.topics.data, 0, start.nextOffset);
    // Not awaited: run() resolves once the consumer has joined, and stop() must end the session even before that.
    session.joined = consumer
      .run({
        autoCommit: false,
        eachBatch: (payload) => {
          const batch = this.onBatch(payload, catalog, grouper, cursor, end, commitOffsets);
          session.batch = batch;
          return batch;
        },
      })
      .then(
        () => this.seekToStart(consumer, start, end),
        (err) => end.fail(err),
      );
    await end.promise;
  }

  private async onBatch(
    payload: EachBatchPayload,
    catalog: SchemaCatalog,
    grouper: TransactionGrouper,
    cursor: TopicCursor,
    end: SessionEnd,
    commitOffsets: (next: bigint) => void,
  ): Promise<void> {
    this.heartbeat = payload.heartbeat;
    // A join that ended after the session did hands over batches nobody is to apply.
    if (end.over) return;
    this.endOffset = BigInt(payload.batch.highWatermark);
    try {
      catalog.throwIfFailed();
      const outcome = await applyBatch(
        payload,
        grouper,
        cursor,
        () => end.failed || this.stopping,
        this.deps.drainTo,
      );
      if (outcome === "halted") return;
      if (grouper.current.nextOffset > (this.position?.nextOffset ?? 0n)) this.failures.progressed();
      this.position = { ...grouper.current };
      if (outcome === "drained") {
        this.stopping = true;
        this.stopSession?.();
        return;
      }
      this.lastProgressAt = Date.now();
      this.deps.metrics.offsetLag.set(Number(this.endOffset - grouper.current.nextOffset));
      recordPosition(this.deps.metrics, grouper.current);
      commitOffsets(grouper.current.nextOffset);
    } catch (err) {
      end.fail(err);
    }
  }

  private seekToStart(consumer: Consumer, start: ApplyPosition, end: SessionEnd): void {
    if (end.over) return;
    this.sessionLive = true;
    // Caught up: nothing waits at this position that could fail again.
    if (start.nextOffset >= this.endOffset) this.failures.progressed();
    // seek() takes effect once run() has started; it is where the standby says it is.
    // It throws when the group join failed meanwhile (a broker restart): the CRASH
    // event then ends this session too, and the next one starts from the standby's position.
    try {
      consumer.seek({ topic: this.deps.topics.data, partition: 0, offset: start.nextOffset.toString() });
    } catch (err) {
      end.fail(err);
    }
  }

  /**
   * For lag dashboards only: the standby's own table is the position that counts.
   * Rarely: with kafkajs, an offset commit per batch stalled fetching for up to a
   * second at a time (measured: p99 apply lag 800 ms at 1000 txn/s, 12 ms without).
   */
  private dashboardOffsetCommits(consumer: Consumer): (next: bigint) => void {
    const topic = this.deps.topics.data;
    let lastOffsetCommit = 0;
    return (next) => {
      if (Date.now() - lastOffsetCommit < KAFKA_OFFSET_COMMIT_INTERVAL_MS) return;
      lastOffsetCommit = Date.now();
      // A failed commit only leaves a dashboard's lag stale until the next one; nothing reads it back.
      consumer.commitOffsets([{ topic, partition: 0, offset: next.toString() }]).catch(() => undefined);
    };
  }

  /** Follows verify's pause requests on a connection of its own while a session runs. */
  private watchPauseRequests(gate: PauseGate): () => void {
    const { topics, config } = this.deps;
    const watcher = new pg.Client(postgresClientConfig(this.deps.standbyUrl, config.standby?.tls));
    // A broken connection also rejects the poll's query, handled below.
    watcher.on("error", () => undefined);
    let active = true;
    const poll = async () => {
      await watcher.connect();
      while (active) {
        gate.requestSeen(await readPauseRequest(watcher, topics.data));
        await new Promise((resolve) => setTimeout(resolve, PAUSE_REQUEST_POLL_MS));
      }
    };
    poll()
      // Without the watcher the applier just stops pausing for verify, whose attempts then
      // find the standby moving and say so: nothing is applied or compared wrongly.
      .catch(() => undefined)
      .finally(() => closeQuietly(watcher.end()));
    return () => {
      active = false;
    };
  }

  private async refuseInterruptedSeed(client: pg.Client): Promise<void> {
    const { topics } = this.deps;
    const startedAt = await seedInProgress(client, topics.data);
    if (startedAt === null) return;
    throw new SeedInterruptedError(topics.data, String(startedAt));
  }

  /** The capture creates the topics; an applier started first waits for them quietly. */
  private async waitForTopics(admin: Admin): Promise<void> {
    const { topics, logger } = this.deps;
    let logged = false;
    for (;;) {
      const existing = new Set(await admin.listTopics());
      if (existing.has(topics.data) && existing.has(topics.schemas)) return;
      if (this.stopping) throw new Error("stopped while waiting for the topic");
      if (!logged) logger.info({ topic: topics.data }, "waiting for the capture to create the topic");
      logged = true;
      await this.backoff.pause(1000);
    }
  }

  /**
   * A standby with no position may start at the topic's beginning only if the
   * topic still holds everything ever written to it; otherwise it must be seeded.
   */
  private initialPosition(offsets: { low: bigint }): ApplyPosition {
    const { topics } = this.deps;
    if (offsets.low !== 0n) throw new TopicGapError(topics.data, 0, null, offsets.low);
    return {
      topic: topics.data,
      partition: 0,
      nextOffset: 0n,
      lastCommitLsn: 0n,
      lastCommitTimeMicros: null,
      sourceId: null,
      epoch: 0,
    };
  }
}

/** Closes what a session opened, in this order. */
async function closeSession(session: Session): Promise<void> {
  // kafkajs's disconnect() leaves the group only once run() has joined it. Before that it leaves nothing
  // and the join still completes: a member that no process runs, which seed, promote and a restarted
  // applier then wait out. So the join ends first; one that takes longer than the session timeout (Kafka
  // not answering) is given up, and what it left expires within that timeout.
  await Promise.race([session.joined, sleep(APPLIER_SESSION_TIMEOUT_MS, undefined, { ref: false })]);
  // A stop or a failure ends the session while a batch may still send statements on its connection: the
  // ROLLBACK must come after the batch's last one, or the statements after it commit on their own.
  await session.batch;
  await session.grouper?.abandon();
  await session.deadLetters?.close();
  // The session is over and the next one opens everything anew: what fails to close is already gone.
  await closeQuietly(session.consumer?.disconnect());
  await session.catalog?.stop().catch(() => undefined);
  await closeQuietly(session.admin.disconnect());
  await closeQuietly(session.client.end());
}

/** The pause gate's view of diffrelay.apply_pause, on the session's connection. */
function standbyPauseRecord(client: pg.Client, topic: string): PauseRecord {
  return {
    markPausedAt: (at: Lsn) => markPausedAt(client, topic, at),
    readPausePoint: () => readPausePoint(client, topic),
    liftPause: () => liftPause(client, topic),
  };
}
