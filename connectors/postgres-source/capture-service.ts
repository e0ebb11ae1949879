import type { Kafka, Producer } from "kafkajs";
import pg from "pg";
import { formatLsn, type Lsn, maxLsn } from "../../src/change/lsn.js";
import type { DiffrelayConfig } from "../../src/config/config-schema.js";
import { postgresClientConfig } from "../../src/config/postgres-connection.js";
import { closeQuietly } from "../../src/errors/close-quietly.js";
import { RepeatedFailureGuard, type Stall } from "../../src/errors/repeated-failure-guard.js";
import { COMPRESSION, orderedProducer } from "../../src/kafka/kafka-client.js";
import { type MessageLimits, messageLimits, topicMaxMessageBytes } from "../../src/kafka/message-limits.js";
import { kafkaTopicSink, type ProduceAck } from "../../src/kafka/ordered-publisher.js";
import { SchemaPublisher } from "../../src/kafka/schema-topic.js";
import { describeShortfall, ensureSourceTopics, partitionOffsets } from "../../src/kafka/topic-admin.js";
import type { SourceTopics } from "../../src/kafka/topic-names.js";
import type { Logger } from "../../src/observability/logger.js";
import { ReconnectBackoff } from "../../src/retry/reconnect-backoff.js";
import { runReconnecting } from "../../src/retry/reconnect-loop.js";
import { countedCaptureId, describeCaptureId } from "../../src/wire/capture-id.js";
import { computeSourceId } from "../../src/wire/envelope.js";
import { type CaptureMetrics, recordSlotState } from "./capture-metrics.js";
import { CaptureSession, type CompletedTransaction } from "./capture-session.js";
import { emitHeartbeat, HEARTBEAT_PREFIX } from "./heartbeat.js";
import { SequenceTracker } from "./sequence-tracker.js";
import { LEGACY_SLOT_NAME } from "./slot-name.js";
import { SlotReader } from "./slot-reader.js";
import { loadRelationSchema } from "./source-catalog.js";
import { SourceConfigurationError } from "./source-errors.js";
import { migrateSource } from "./source-migrator.js";
import { ensureZeroLoss, readZeroLossState, type ZeroLossGuarantee } from "./zero-loss.js";

export interface CaptureStatus {
  role: "capture";
  topic: string;
  slot: string;
  confirmedLsn: string;
  serverWalEnd: string;
  slotLagBytes: number;
  /** Whether the source's commits wait for this capture (synchronous_standby_names), as found at start. */
  zeroLoss: ZeroLossGuarantee;
  /** Its walsender's sync_state ("sync": the synchronous standby commits wait for), as of the last heartbeat; null: not connected. */
  syncState: string | null;
  transactions: number;
  flowing: boolean;
  lastError: string | null;
  /** Set while the same failure keeps recurring at the slot's confirmed position. */
  stalled: Stall | null;
}

/**
 * How long a durable position waits to reach the slot when no commit waits
 * for it: the slot's position matters for the WAL it keeps, not for data, and
 * one status update then covers some 20 ms of Kafka acknowledgements.
 */
const STATUS_DELAY_MS = 20;

interface CaptureServiceDeps {
  config: DiffrelayConfig & { source: NonNullable<DiffrelayConfig["source"]> };
  topics: SourceTopics;
  kafka: Kafka;
  logger: Logger;
  metrics: CaptureMetrics;
  /**
   * The guarantee already in force when it starts (as its node read it): /status says it from the
   * start, not "off" until the first session has read the setting.
   */
  zeroLossInForce?: ZeroLossGuarantee;
  /** Whether the slot may be confirmed at this instant (a cluster node's lease; see SlotReaderOptions). */
  mayAcknowledge?: () => boolean;
}

/**
 * Runs capture sessions until stopped: each session is one replication
 * connection, started from the slot's durable position. Any failure that a
 * reconnect can cure (PostgreSQL or Kafka away) ends the session and starts a
 * new one after a backoff; the slot guarantees nothing is lost meanwhile.
 */
export class CaptureService {
  private stopping = false;
  private reader: SlotReader | null = null;
  private topics: SourceTopics | null = null;
  /** The capture's slot as resolved at set-up (until then, the configured one or ""). */
  private slot = "";
  private zeroLoss: ZeroLossGuarantee;
  private syncState: string | null = null;
  private confirmed: Lsn = 0n;
  private serverWalEnd: Lsn = 0n;
  private transactions = 0;
  private lastError: string | null = null;
  private lastProgressAt = Date.now();
  private sessionLive = false;
  private readonly backoff = new ReconnectBackoff();
  private slotBusyAttempts = 0;
  private readonly sequences: SequenceTracker;
  private readonly failures: RepeatedFailureGuard;

  /**
   * Written into every message with the session's number: which capture start wrote it, greater than
   * every earlier start's (the epoch and the source's start counter, not a clock), so an applier can tell
   * a late message of an ended capture from the current one's. Set by run() before the first session.
   */
  private captureId: bigint | null = null;
  private sessions = 0;
  /** The backend pid of the current session's catalog connection (null between sessions). */
  private catalogPid: number | null = null;
  private limits: MessageLimits | null = null;

  /** pgoutput bytes of the current reader already added to the metric. */
  private pgoutputBytesCounted = 0;

  constructor(private readonly deps: CaptureServiceDeps) {
    this.zeroLoss = deps.zeroLossInForce ?? "off";
    this.sequences = new SequenceTracker(deps.config.capture.publication);
    this.failures = new RepeatedFailureGuard(deps.config.stallAfter);
    deps.metrics.reportHealthFrom(() => this.isFlowing());
    deps.metrics.reportStallFrom(() => this.failures.stall !== null);
  }

  status(): CaptureStatus {
    // Read from the live reader, not the heartbeat's copy: a failover takes this
    // lag as what the old primary may have lost, so it must be as fresh as the
    // last keepalive, not up to a heartbeat interval old.
    const walEnd = maxLsn(this.reader?.lastServerWalEnd ?? 0n, this.serverWalEnd);
    const confirmed = this.reader?.confirmedLsn ?? this.confirmed;
    return {
      role: "capture",
      topic: this.topics?.data ?? "",
      slot: this.slot || (this.deps.config.capture.slot ?? ""),
      confirmedLsn: formatLsn(confirmed),
      serverWalEnd: formatLsn(walEnd),
      slotLagBytes: Number(walEnd > confirmed ? walEnd - confirmed : 0n),
      zeroLoss: this.zeroLoss,
      syncState: this.syncState,
      transactions: this.transactions,
      flowing: this.isFlowing(),
      lastError: this.lastError,
      stalled: this.failures.stall,
    };
  }

  /**
   * The pids of this capture's client sessions on the source: a fence that ends
   * every other session spares these, so that the capture can still load the
   * schema of a relation whose first change it has yet to read. (Its replication
   * connection is a walsender, which a fence of client sessions leaves alone.)
   */
  clientBackendPids(): number[] {
    return this.catalogPid === null ? [] : [this.catalogPid];
  }

  /** Flowing: a session is connected and the slot moved recently or nothing waits. */
  isFlowing(): boolean {
    if (this.failures.stall !== null) return false;
    return (
      this.sessionLive && (Date.now() - this.lastProgressAt < 60_000 || this.serverWalEnd <= this.confirmed)
    );
  }

  async run(): Promise<void> {
    const { logger } = this.deps;
    const source = await this.prepareSource();
    this.topics = this.deps.topics;
    const topic = this.topics.data;
    const admin = this.deps.kafka.admin();
    await admin.connect();
    try {
      const shortfalls = await ensureSourceTopics(admin, this.topics, this.deps.config.kafka ?? {});
      for (const shortfall of shortfalls) {
        logger.warn({ topic: shortfall.topic, ...shortfall.actual }, describeShortfall(shortfall));
      }
      const topicLimit = await topicMaxMessageBytes(admin, topic);
      this.limits = messageLimits(topicLimit, this.deps.config.capture.maxMessageBytes);
      logger.info(
        { topic, maxMessageBytesOfTopic: topicLimit, ...this.limits },
        "message sizes (values too large for a message are split across messages)",
      );
      // Known before the first produce, so a restarted capture shows where the topic ends at once. Only
      // for the metric: a topic created a moment ago may have no leader yet, and the first ack sets it too.
      await partitionOffsets(admin, this.topics.data).then(
        ({ high }) => this.deps.metrics.topicEndOffset.set({ topic }, Number(high)),
        (err) => logger.debug({ err }, "topic end offset not known yet"),
      );
      this.deps.metrics.messagesPublished.inc({ topic }, 0);
    } finally {
      await admin.disconnect();
    }
    logger.info({ topic: this.topics.data, schemas: this.topics.schemas }, "capture publishing");
    const identity = {
      sourceId: computeSourceId(source.systemIdentifier, source.databaseName),
      epoch: this.deps.config.epoch,
    };
    await runReconnecting({
      session: () => this.runProducerSession(identity),
      stopping: () => this.stopping,
      position: () => `LSN ${formatLsn(this.confirmed)}`,
      backoff: this.backoff,
      failures: this.failures,
      metrics: this.deps.metrics,
      logger,
      retryMessage: "capture session ended; reconnecting from the slot's durable position",
      onFailure: (_err, description) => {
        this.lastError = description;
      },
      retryAnyway: (err) => this.slotMayBeFreed(err),
    });
  }

  /**
   * One session with a fresh producer (so a fresh producer id): after a failed send kafkajs hands the
   * batch's sequence numbers out again, and if the broker had appended that batch after all, the next
   * batch with the same numbers would be refused as out of sequence or, worse, acknowledged as a
   * duplicate without being written. A new id starts a new sequence; the resent transactions are
   * duplicates by commit LSN, which the applier skips.
   * Idempotent: a produce that kafkajs retries after the broker appended it is not written twice
   * (measured against Kafka 4.1 with leader kills: test/integration/kafka-idempotent-producer.test.ts).
   * Kafka requires acks=-1 (the publisher's) and at most 5 requests in flight; one keeps order simple.
   */
  private async runProducerSession(identity: { sourceId: bigint; epoch: number }): Promise<void> {
    const producer = orderedProducer(this.deps.kafka, { idempotent: true });
    try {
      await producer.connect();
      const { schemas } = this.topics as SourceTopics;
      await this.runSession(producer, new SchemaPublisher(producer, schemas, identity), identity);
    } finally {
      // The session's publisher is closed (its request in flight settled); a producer that fails
      // to disconnect holds nothing that is not already acknowledged or left for the next session.
      await closeQuietly(producer.disconnect());
    }
  }

  /**
   * Right after a capture is killed, its walsender may hold the slot until
   * PostgreSQL notices the closed socket: a restarted capture waits for that
   * (up to about 30 s) before calling the slot taken by someone else.
   */
  private slotMayBeFreed(err: unknown): boolean {
    if (!(err instanceof SourceConfigurationError) || err.problem !== "slot_in_use") return false;
    this.slotBusyAttempts += 1;
    return this.slotBusyAttempts <= 6;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.backoff.interrupt();
    await this.reader?.stop();
  }

  private async prepareSource() {
    const { config, logger } = this.deps;
    const client = new pg.Client(postgresClientConfig(config.source.url, config.source.tls));
    await client.connect();
    try {
      // The capture's own writes never wait for the capture: with zero-loss on and the capture away,
      // its setup would otherwise wait for itself.
      await client.query("SET synchronous_commit = local");
      const setup = await migrateSource(client, {
        publicationName: config.capture.publication,
        slotName: config.capture.slot,
        note: (message) => logger.info({ slot: LEGACY_SLOT_NAME }, message),
        tables: config.capture.tables,
        schemas: config.capture.schemas,
        identity: config.capture.identity,
      });
      const ddl = await client.query(
        "SELECT 1 FROM pg_event_trigger WHERE evtname = 'diffrelay_capture_ddl'",
      );
      if (ddl.rowCount) logger.info("schema changes are captured (event trigger installed)");
      else {
        logger.warn(
          "schema changes are NOT captured: installing the event trigger needs a superuser; apply DDL to the standbys by hand",
        );
      }
      const askedDefault = new Set(
        Object.entries(config.capture.identity)
          .filter(([, mode]) => mode === "default")
          .map(([name]) => (name.includes(".") ? name : `public.${name}`)),
      );
      for (const table of setup.tables) {
        if (askedDefault.has(table.name) && table.identity === "full") {
          // Without a key, DEFAULT identity logs no old row: updates and deletes could not be applied.
          logger.warn(
            { table: table.name },
            "configured for REPLICA IDENTITY DEFAULT, but the table has no primary key: kept FULL",
          );
        }
        logger.info(
          { table: table.name, identity: table.identity },
          table.identity === "full"
            ? "exact column diffs (REPLICA IDENTITY FULL)"
            : "updates carry every streamed column (REPLICA IDENTITY DEFAULT)",
        );
      }
      this.slot = setup.slot;
      logger.info({ slot: setup.slot, applicationName: setup.slot }, "capture slot");
      this.captureId = await nextCaptureId(client, config.epoch);
      logger.info(
        { captureId: this.captureId.toString(16) },
        `capture id: ${describeCaptureId(this.captureId)}`,
      );
      await this.prepareZeroLoss(client);
      return setup.source;
    } finally {
      await client.end();
    }
  }

  /**
   * After the slot exists (creating one waits for running transactions, which
   * could be waiting for this capture): zero-loss mode sets or checks
   * synchronous_standby_names; without it, a setting that names the capture
   * anyway is reported, since commits then wait for it all the same.
   */
  private async prepareZeroLoss(client: pg.Client): Promise<void> {
    const { config, logger } = this.deps;
    const state = config.capture.zeroLoss
      ? await ensureZeroLoss(client, this.slot)
      : await readZeroLossState(client, this.slot);
    this.zeroLoss = state.guarantee;
    const facts = {
      applicationName: this.slot,
      synchronousStandbyNames: state.synchronousStandbyNames,
      synchronousCommit: state.synchronousCommit,
      guarantee: state.guarantee,
    };
    if (state.changed) logger.info(facts, "zero-loss mode: synchronous_standby_names set (ALTER SYSTEM)");
    if (config.capture.zeroLoss && state.guarantee === "required") {
      logger.info(facts, "zero-loss mode: every commit on the source waits until Kafka holds it");
    } else if (config.capture.zeroLoss) {
      logger.warn(
        facts,
        "zero-loss mode: synchronous_standby_names names the capture, but another standby can release a commit without it (ANY, a longer FIRST list, or *): a commit may return before Kafka holds it",
      );
    } else if (state.guarantee !== "off") {
      logger.warn(
        facts,
        "synchronous_standby_names names this capture: commits on the source wait for it although zero-loss mode is off; while it is stopped they wait. Remove it from synchronous_standby_names if that is not wanted",
      );
    }
  }

  private async runSession(
    producer: Producer,
    schemas: SchemaPublisher,
    identity: { sourceId: bigint; epoch: number },
  ): Promise<void> {
    const { config, logger, metrics } = this.deps;
    const topics = this.topics as SourceTopics;
    const catalogClient = new pg.Client(postgresClientConfig(config.source.url, config.source.tls));
    await catalogClient.connect();
    catalogClient.on("error", () => undefined);
    // Its transactional writes (sequence positions) come back through this session: never wait for it.
    await catalogClient.query("SET synchronous_commit = local");
    this.catalogPid =
      (await catalogClient.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows[0]?.pid ?? null;
    const session = new CaptureSession({
      sink: kafkaTopicSink(producer, topics.data, COMPRESSION[config.capture.compression]),
      sourceId: identity.sourceId,
      epoch: identity.epoch,
      session: { captureId: this.captureId as bigint, session: ++this.sessions },
      ...(this.limits as MessageLimits),
      maxPendingBytes: config.capture.maxPendingBytes,
      maxValueBytes: config.capture.maxValueBytes,
      lingerMs: config.capture.lingerMs,
      schemas,
      loadRelation: (message) => loadRelationSchema(catalogClient, message.relationId, message),
      onDurable: (completed, bytes, acked) => this.onDurable(completed, bytes, acked),
      // A failed send ends the stream at once, quiet slot or not; the service then reconnects from the
      // slot. (Sends start only once the reader below delivers messages, so it exists by then.)
      onFailure: (error) => reader.abort(error),
    });
    const reader = new SlotReader({
      connection: postgresClientConfig(config.source.url, config.source.tls),
      slotName: this.slot,
      publicationName: config.capture.publication,
      // Slots are unique per server, so the slot's name is a stable, unique standby name.
      applicationName: this.slot,
      isIdle: () => session.isIdle(),
      // A commit waits for this capture only when synchronous_standby_names names it.
      statusDelayMs: () => (this.zeroLoss === "off" ? STATUS_DELAY_MS : 0),
      maxValueBytes: config.capture.maxValueBytes,
      mayAcknowledge: this.deps.mayAcknowledge,
      onMessage: (message) => {
        this.slotBusyAttempts = 0;
        if (message.tag === "message" && !message.transactional && message.prefix === HEARTBEAT_PREFIX) {
          // Everything before the heartbeat has been received; if all of it is durable, so is this point.
          if (session.isIdle()) reader.confirm(message.lsn);
          return undefined;
        }
        return session.handle(message);
      },
      logger,
    });
    this.reader = reader;
    this.pgoutputBytesCounted = 0;
    const readSlotState = () =>
      catalogClient
        .query<{ wal_status: string | null; safe_wal_size: string | null }>(
          "SELECT wal_status, safe_wal_size::text FROM pg_replication_slots WHERE slot_name = $1",
          [this.slot],
        )
        .then((r) => {
          const row = r.rows[0];
          recordSlotState(
            metrics,
            row ? { walStatus: row.wal_status, safeWalSize: row.safe_wal_size } : null,
          );
        });
    const warnSlotState = (err: unknown) => logger.warn({ err }, "reading the slot's WAL status failed");
    readSlotState().catch(warnSlotState);
    const heartbeat = setInterval(() => {
      this.countPgoutputBytes();
      this.serverWalEnd = maxLsn(reader.lastServerWalEnd, this.serverWalEnd);
      if (reader.confirmedLsn > this.confirmed) this.failures.progressed();
      this.confirmed = reader.confirmedLsn;
      metrics.slotLagBytes.set(
        Number(this.serverWalEnd > this.confirmed ? this.serverWalEnd - this.confirmed : 0n),
      );
      emitHeartbeat(catalogClient)
        .then(() => this.sequences.publishChanged(catalogClient))
        .then(readSlotState)
        // Kept current for /status, which a failover reads: the setting can change while the capture runs.
        .then(() => readZeroLossState(catalogClient, this.slot))
        .then((state) => {
          this.zeroLoss = state.guarantee;
          this.syncState = state.syncState;
        })
        .catch((err) => logger.warn({ err }, "heartbeat, sequence positions or slot state failed"));
    }, config.capture.heartbeatIntervalMs);
    this.sessionLive = true;
    try {
      await reader.start();
    } finally {
      this.sessionLive = false;
      clearInterval(heartbeat);
      this.countPgoutputBytes();
      await session.close();
      this.catalogPid = null;
      await closeQuietly(catalogClient.end());
      this.reader = null;
    }
  }

  /** Adds what the reader received since the last call (a running sum; a counter per message costs more). */
  private countPgoutputBytes(): void {
    const received = this.reader?.receivedBytes ?? this.pgoutputBytesCounted;
    this.deps.metrics.pgoutputBytes.inc(received - this.pgoutputBytesCounted);
    this.pgoutputBytesCounted = received;
  }

  private onDurable(completed: CompletedTransaction[], bytes: number, acked: ProduceAck): void {
    const { metrics } = this.deps;
    const topic = this.topics?.data ?? "";
    metrics.bytesPublished.inc(bytes);
    this.countPgoutputBytes();
    if (acked.messages > 0) metrics.messagesPublished.inc({ topic }, acked.messages);
    if (acked.endOffset !== null) metrics.topicEndOffset.set({ topic }, Number(acked.endOffset));
    const last = completed[completed.length - 1];
    if (!last) return;
    let rows = 0;
    for (const t of completed) rows += t.rows;
    metrics.rows.inc(rows);
    metrics.transactions.inc(completed.length);
    this.transactions += completed.length;
    this.reader?.confirm(last.endLsn);
    if (last.endLsn > this.confirmed) this.failures.progressed();
    this.confirmed = last.endLsn;
    this.lastProgressAt = Date.now();
    metrics.lastAckedLsn.set(Number(last.endLsn));
    metrics.timeBehindSeconds.set(Math.max(0, Date.now() / 1000 - Number(last.commitTimeMicros) / 1e6));
  }
}

/** This start's capture id: the source hands out the start's number (migrations/source/005_capture_start.sql). */
async function nextCaptureId(client: pg.Client, epoch: number): Promise<bigint> {
  let start: string;
  try {
    const { rows } = await client.query<{ start: string }>(
      "SELECT pg_catalog.nextval('diffrelay.capture_start')::text AS start",
    );
    start = rows[0]?.start as string;
  } catch (error) {
    if ((error as { code?: string }).code !== "42501") throw error;
    throw new SourceConfigurationError(
      "permission_denied",
      `the capture's role may not number its start (${(error as Error).message}): GRANT USAGE ON SEQUENCE diffrelay.capture_start TO it (another role created it)`,
      { cause: error },
    );
  }
  return countedCaptureId(epoch, BigInt(start));
}
