import type { Kafka } from "kafkajs";
import {
  CaptureService,
  createCaptureMetrics,
  identifySource,
} from "../../connectors/postgres-source/index.js";
import { ApplyService, createApplyMetrics } from "../../connectors/postgres-standby/index.js";
import type { DiffrelayConfig } from "../../src/config/config-schema.js";
import { postgresClientConfig } from "../../src/config/postgres-connection.js";
import { closeQuietly } from "../../src/errors/close-quietly.js";
import { partitionOffsets } from "../../src/kafka/topic-admin.js";
import { clusterDataTopics, type SourceTopics } from "../../src/kafka/topic-names.js";
import type { Logger } from "../../src/observability/logger.js";
import { redactError } from "../../src/observability/redact.js";
import { computeSourceId } from "../../src/wire/envelope.js";
import {
  type ClusterMember,
  type ClusterState,
  ClusterStore,
  type ClusterView,
  type NodeReport,
  type RejoinSummary,
} from "../cluster/index.js";
import {
  setDatabaseConnectable,
  setDatabaseReadOnly,
  writableSessionUrl,
} from "../promote/database-access.js";
import { fenceOldPrimary } from "../promote/old-primary-fence.js";
import { becomeSource, drainStandby, pointStandbyAt, withDatabase } from "../promote/promote-steps.js";
import { catchUpWithCluster, type RejoinReport, renderRejoinReport } from "../rejoin/index.js";
import {
  type DatabaseRoleFacts,
  databaseFacts,
  dropCaptureSlot,
  fenceStalePrimary,
  type ZeroLossRelease,
} from "./node-database.js";
import { NodeRoleError } from "./node-errors.js";
import { createNodeMetrics } from "./node-metrics.js";
import { databaseAddress, type PeerCredentials, peerDatabaseUrl } from "./peer-database.js";
import { summarizeRejoin } from "./rejoin-summary.js";

export interface ClusterNodeOptions {
  config: DiffrelayConfig;
  kafka: Kafka;
  logger: Logger;
  cluster: string;
  name: string;
  apiUrl: string;
  databaseUrl: string;
  /** The other nodes. */
  members: ClusterMember[];
  /** The node that bootstraps a cluster without state as its first primary. */
  initialPrimary: string | undefined;
  /** This node's database as the other nodes reach it, without user and password (in its reports). */
  databaseAddress: string | undefined;
  /** What this node connects to another node's database with (each unset: that of databaseUrl). */
  peerCredentials: PeerCredentials;
  /** A stale primary's node rejoins it as a standby by itself; false: it stays fenced for `diffrelay rejoin`. */
  autoRejoin: boolean;
}

/** The node's latest rejoin: what it found (the report) or why it failed. */
interface RejoinOutcome {
  state: RejoinSummary["state"];
  epoch: number;
  at: string;
  report: RejoinReport | null;
  error: string | null;
}

type Role =
  | { kind: "starting" }
  | { kind: "primary"; epoch: number; service: CaptureService; done: Promise<void> }
  | { kind: "standby"; epoch: number; topics: SourceTopics; service: ApplyService; done: Promise<void> }
  /** Between roles, during the change from epoch `from` to `epoch`: neither capturing nor applying. */
  | { kind: "switching"; from: number; epoch: number }
  | { kind: "fenced"; epoch: number; reason: string };

/** The cluster moved past the epoch a step was taken for: act on the new one instead. */
class Superseded extends Error {}

const REPORT_INTERVAL_MS = 5000;
const STEP_TIMEOUT_MS = 120_000;
/** Changes of the unpublished transactions listed in /status, and in the node's record on the cluster topic. */
const STATUS_CHANGES = 10_000;
const RECORD_CHANGES = 200;

/**
 * One node of an HA cluster, beside one database server: the capture while the
 * cluster state names it primary, the applier otherwise, and the node's part of
 * every role change. It acts only on the cluster's current state (the highest
 * claimed and published epoch) and reports itself to the cluster topic.
 */
export class ClusterNode {
  private readonly store: ClusterStore;
  private view: ClusterView | null = null;
  private wake: () => void = () => undefined;
  private role: Role = { kind: "starting" };
  private stopping = false;
  private failure: unknown = null;
  private lastError: string | null = null;
  private fencedAt: string | null = null;
  private writableAt: string | null = null;
  private fencedEndOffset: string | null = null;
  private sourceId: string | null = null;
  private rejoin: RejoinOutcome | null = null;
  /** The cluster epoch of the last rejoin attempt: one attempt per epoch, so a failure is never retried in a loop. */
  private rejoinTriedAt: number | null = null;
  private readonly captureMetrics = createCaptureMetrics();
  private readonly applyMetrics;
  private readonly nodeMetrics;

  constructor(private readonly options: ClusterNodeOptions) {
    this.store = new ClusterStore({
      kafka: options.kafka,
      logger: options.logger,
      topicPrefix: options.config.topicPrefix,
      cluster: options.cluster,
      durability: options.config.kafka ?? {},
    });
    this.applyMetrics = createApplyMetrics(options.name);
    this.nodeMetrics = createNodeMetrics([this.captureMetrics.registry, this.applyMetrics.registry]);
  }

  /** The metrics of the current role. */
  get registry() {
    return this.role.kind === "primary" ? this.captureMetrics.registry : this.applyMetrics.registry;
  }

  async run(): Promise<void> {
    await this.store.ensureTopic();
    const follower = await this.store.follow((view) => {
      this.view = view;
      this.wake();
    }, true);
    const timer = setInterval(() => void this.report(), REPORT_INTERVAL_MS);
    try {
      while (!this.stopping) {
        if (this.failure) throw this.failure;
        const state = this.view?.state ?? null;
        if (state === null) {
          if (this.view && this.options.initialPrimary === this.options.name) await this.bootstrap();
          else await this.nextView();
          continue;
        }
        try {
          const acted = await this.actOn(state);
          if (acted) await this.report();
          else await this.nextView();
        } catch (err) {
          if (err instanceof Superseded) continue;
          throw err;
        }
      }
    } catch (err) {
      this.lastError = redactError(err);
      this.options.logger.error({ err }, "node stopped by an error");
      await this.report();
      throw err;
    } finally {
      clearInterval(timer);
      await this.stopService();
      await follower.stop();
      await this.store.close();
    }
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.wake();
  }

  /** /healthz: the current role's stream flows; a fenced or failed node is unhealthy. */
  isFlowing(): boolean {
    if (this.failure) return false;
    if (this.role.kind === "primary" || this.role.kind === "standby") return this.role.service.isFlowing();
    return this.role.kind === "switching";
  }

  /** /primary: only the writable primary of the current epoch. */
  isWritablePrimary(): boolean {
    const state = this.view?.state;
    return (
      this.role.kind === "primary" &&
      state?.epoch === this.role.epoch &&
      state.primary === this.options.name &&
      this.writableAt !== null
    );
  }

  /** /replica?lag=ms: a standby of the current epoch (or of the one a role change leaves) whose applier flows, within that lag when given. */
  isReplicaWithin(maxLagMs: number | undefined): boolean {
    const state = this.view?.state;
    if (this.role.kind !== "standby" || !state) return false;
    // During a role change a standby of the epoch before it still holds a committed state of the
    // old primary and goes on applying it: it keeps serving reads until it changes role.
    const current = state.epoch === this.role.epoch && state.primary !== this.options.name;
    const changingFrom = state.phase !== "stable" && state.previous?.epoch === this.role.epoch;
    if (!current && !changingFrom) return false;
    if (!this.role.service.isFlowing()) return false;
    const lag = this.lagMs();
    return maxLagMs === undefined || (lag !== null && lag <= maxLagMs);
  }

  status(): object {
    const state = this.view?.state ?? null;
    const service =
      this.role.kind === "primary" || this.role.kind === "standby" ? this.role.service.status() : null;
    return {
      role: "node",
      node: this.options.name,
      cluster: this.options.cluster,
      nodeRole: this.role.kind,
      epoch: "epoch" in this.role ? this.role.epoch : null,
      clusterEpoch: state?.epoch ?? null,
      clusterPrimary: state?.primary ?? null,
      phase: state?.phase ?? null,
      writable: this.isWritablePrimary(),
      lagMs: this.lagMs(),
      fencedAt: this.fencedAt,
      writableAt: this.writableAt,
      fenced: this.role.kind === "fenced" ? this.role.reason : null,
      autoRejoin: this.options.autoRejoin,
      rejoin: this.rejoinSummary(STATUS_CHANGES),
      lastError: this.lastError,
      service,
    };
  }

  private rejoinSummary(maxChanges: number): RejoinSummary | null {
    const r = this.rejoin;
    if (!r) return null;
    const base = r.report
      ? summarizeRejoin(r.report, maxChanges, r.at)
      : {
          epoch: r.epoch,
          method: null,
          reseedReasons: [],
          unpublishedTotal: null,
          unpublished: [],
          transactionsLeftOut: 0,
          reportId: null,
          at: r.at,
        };
    return { ...base, state: r.state, error: r.error };
  }

  private lagMs(): number | null {
    if (this.role.kind !== "standby") return null;
    const seconds = this.role.service.status().timeLagSeconds;
    return seconds === null ? null : Math.round(seconds * 1000);
  }

  /** The first state of a cluster: this node primary of the configured epoch, on a fresh claim. */
  private async bootstrap(): Promise<void> {
    const { config, name } = this.options;
    const epoch = config.epoch;
    await this.store.claimEpoch(epoch, `node ${name} (bootstrap)`);
    await this.store.publishState({
      cluster: this.options.cluster,
      epoch,
      primary: name,
      members: [{ name, apiUrl: this.options.apiUrl }, ...this.options.members],
      phase: "stable",
      topics: clusterDataTopics(config, this.options.cluster, epoch),
      previous: null,
      writtenBy: `node ${name}`,
      writtenAt: new Date().toISOString(),
    });
    this.options.logger.info({ epoch }, "cluster bootstrapped: this node is its first primary");
    await this.nextView();
  }

  /** Takes this node's step for the state, if it has one. Returns whether it did anything. */
  private async actOn(state: ClusterState): Promise<boolean> {
    const me = this.options.name;
    const role = this.role;
    const changing = state.phase !== "stable" && state.previous !== null;
    switch (role.kind) {
      case "fenced":
        if (!this.options.autoRejoin || this.rejoinTriedAt === state.epoch) return false;
        await this.rejoinAsStandby(state);
        return true;
      case "primary":
      case "standby":
        if (role.epoch === state.epoch) return false;
        break;
      case "switching":
        if (role.epoch === state.epoch) return false;
        break;
      case "starting":
        break;
    }
    if (role.kind === "primary") {
      // Only a switchover asks the primary to hand over (phase fencing): after a failover the cluster
      // drained without it, so what it committed since is on no other node and it must not follow as is.
      if (
        changing &&
        state.phase === "fencing" &&
        state.previous?.epoch === role.epoch &&
        state.previous.primary === me
      ) {
        await this.handOver(state);
      } else {
        await this.fenceStale(
          state,
          `node ${me} was the primary of epoch ${role.epoch}, but the cluster is at epoch ${state.epoch} with primary ${state.primary}`,
        );
      }
      return true;
    }
    if (role.kind === "standby" || role.kind === "switching") {
      const from = role.kind === "standby" ? role.epoch : role.from;
      if (state.previous && state.previous.epoch === from) {
        await this.followChange(state);
        return true;
      }
      await this.catchUp(state);
      return true;
    }
    return this.start(state);
  }

  /** A node process starting: take the role the state gives this database. */
  private async start(state: ClusterState): Promise<boolean> {
    const { name, databaseUrl, config } = this.options;
    const facts = await databaseFacts(writableSessionUrl(databaseUrl), config).catch((err) => {
      // A database that refuses every connection was fenced as an old primary (by an earlier run of this node or by promote).
      if ((err as { code?: string }).code === "55000" && state.primary !== name) return null;
      throw err;
    });
    if (facts === null) {
      await this.fenceStale(
        state,
        `node ${name}'s database accepts no connections (fenced as an old primary earlier), and the cluster is at epoch ${state.epoch} with primary ${state.primary}`,
      );
      return true;
    }
    if (state.primary === name && state.phase === "stable") {
      await this.startPrimary(state);
      return true;
    }
    if ((await facts.positionOn(state.topics.data)) !== null) {
      await this.resumeAfterRejoin(state, facts);
      await this.startStandby(state);
      return true;
    }
    if (state.previous && (await facts.positionOn(state.previous.topics.data)) !== null) {
      this.role = { kind: "switching", from: state.previous.epoch, epoch: state.epoch };
      await this.followChange(state);
      return true;
    }
    if (facts.hasCaptureSlot) {
      await this.fenceStale(
        state,
        `node ${name}'s database holds the capture's slot (it was a primary), but the cluster is at epoch ${state.epoch} with primary ${state.primary} and this database is no standby of it`,
      );
      return true;
    }
    await this.catchUp(state);
    return true;
  }

  /**
   * A standby that missed role changes (down, or cut off, while the cluster
   * moved more than once) follows the chain of epochs since its own; refused
   * with every reason and the seed command when the chain cannot be followed.
   */
  private async catchUp(state: ClusterState): Promise<void> {
    await this.stopService();
    const { target } = await catchUpWithCluster(this.catchUpOptions(state, false));
    await this.startStandby({ ...state, epoch: target.epoch, topics: target.topics });
  }

  private catchUpOptions(state: ClusterState, stalePrimary: boolean) {
    const { config, databaseUrl, kafka, logger, name } = this.options;
    return {
      view: this.view as ClusterView,
      name,
      config,
      kafka,
      logger: logger.child({ role: stalePrimary ? "rejoin" : "catch-up", epoch: state.epoch }),
      databaseUrl,
      stalePrimary,
      primaryDatabase: async (primary: string, epoch: number) => {
        const address = await this.until(state.epoch, (_s, view) => {
          const r = view.reports.get(primary);
          return r?.epoch === epoch && r.role === "primary" && r.ready && r.databaseUrl
            ? r.databaseUrl
            : undefined;
        });
        const url = peerDatabaseUrl(address, databaseUrl, this.options.peerCredentials);
        return { url, config: postgresClientConfig(url, config.standby?.tls) };
      },
    };
  }

  /**
   * A standby of the current topic that rejoined onto it earlier (this node or
   * `diffrelay rejoin`): /status keeps showing what that rejoin found, and a
   * capture slot left by a rejoin interrupted between its repair and its last
   * step is dropped (it pins WAL, and a later promotion makes its own).
   */
  private async resumeAfterRejoin(state: ClusterState, facts: DatabaseRoleFacts): Promise<void> {
    const { config, databaseUrl, logger } = this.options;
    const earlier = await facts.rejoinedOnto(state.topics.data);
    if (earlier) {
      const report = { ...(earlier.report as RejoinReport), reportId: earlier.id };
      this.rejoin = {
        state: "rejoined",
        epoch: state.epoch,
        at: earlier.repairedAt.toISOString(),
        report,
        error: null,
      };
    }
    if (facts.hasCaptureSlot && state.primary !== this.options.name) {
      logger.warn(
        { topic: state.topics.data },
        "this standby still holds the capture's slot of its days as a primary: dropping it",
      );
      await dropCaptureSlot(writableSessionUrl(databaseUrl), config, 30_000);
    }
  }

  private async startPrimary(state: ClusterState): Promise<void> {
    const { config, databaseUrl, logger } = this.options;
    await setDatabaseReadOnly(postgresClientConfig(databaseUrl, config.standby?.tls), false);
    this.sourceId ??= await this.readSourceId();
    const service = new CaptureService({
      config: { ...config, epoch: state.epoch, source: { url: databaseUrl, tls: config.standby?.tls } },
      topics: state.topics,
      kafka: this.options.kafka,
      logger: logger.child({ role: "primary", epoch: state.epoch }),
      metrics: this.captureMetrics,
    });
    this.role = { kind: "primary", epoch: state.epoch, service, done: this.watch(service.run(), "capture") };
    this.writableAt ??= new Date().toISOString();
    logger.info({ epoch: state.epoch, topic: state.topics.data }, "primary: capturing");
  }

  private async startStandby(state: ClusterState): Promise<void> {
    const { config, databaseUrl, logger, name } = this.options;
    // Client sessions opened from now on cannot write; the applier's own session overrides it.
    await setDatabaseReadOnly(postgresClientConfig(databaseUrl, config.standby?.tls), true);
    const service = new ApplyService({
      config: { ...config, epoch: state.epoch },
      standbyName: name,
      standbyUrl: writableSessionUrl(databaseUrl),
      topics: state.topics,
      kafka: this.options.kafka,
      logger: logger.child({ role: "standby", epoch: state.epoch }),
      metrics: this.applyMetrics,
    });
    this.role = {
      kind: "standby",
      epoch: state.epoch,
      topics: state.topics,
      service,
      done: this.watch(service.run(), "applier"),
    };
    this.writableAt = null;
    logger.info({ epoch: state.epoch, topic: state.topics.data }, "standby: applying");
  }

  /**
   * The primary's part of a switchover: fence (read-only, no sessions, the
   * capture publishes everything committed), stop capturing, report the old
   * topic's end, then follow the new primary from its topic's start: this
   * database holds exactly what the old topic holds, so no re-seed is needed.
   */
  private async handOver(state: ClusterState): Promise<void> {
    const { config, databaseUrl, logger } = this.options;
    const previous = state.previous as NonNullable<ClusterState["previous"]>;
    this.fencedAt = new Date().toISOString();
    this.fencedEndOffset = null;
    this.writableAt = null;
    const fence = await fenceOldPrimary({
      config: postgresClientConfig(databaseUrl, config.standby?.tls),
      slot: config.capture.slot,
      publication: config.capture.publication,
      timeoutMs: 30_000,
      lastKnownSlotLag: async () => null,
    });
    if (fence.alive !== true)
      throw new Error(`node could not reach its own database to fence it: ${fence.reason}`);
    await this.stopService();
    this.role = { kind: "switching", from: previous.epoch, epoch: state.epoch };
    const admin = this.options.kafka.admin();
    await admin.connect();
    try {
      this.fencedEndOffset = (await partitionOffsets(admin, previous.topics.data)).high.toString();
    } finally {
      await closeQuietly(admin.disconnect());
    }
    await setDatabaseConnectable(postgresClientConfig(databaseUrl, config.standby?.tls), true);
    await dropCaptureSlot(writableSessionUrl(databaseUrl), config, 30_000);
    logger.info(
      { fencedAt: fence.fencedAt, topic: previous.topics.data, endOffset: this.fencedEndOffset },
      "fenced for the switchover: everything committed here is in the old topic",
    );
    await this.report();
    await this.followNewPrimary(state);
  }

  /** A standby's part of a role change: drain the old topic to its end, then follow or become the new primary. */
  private async followChange(state: ClusterState): Promise<void> {
    const { config, databaseUrl, kafka, logger, name } = this.options;
    // Unbounded: until the old primary fences, this standby's applier goes on, and the switchover
    // that waits for the fence is the one that says it stalled (and that a failover ends it).
    const end = await this.until(
      state.epoch,
      (s) => (s.previous?.drainedEndOffset ? BigInt(s.previous.drainedEndOffset) : undefined),
      "unbounded",
    );
    const previous = state.previous as NonNullable<ClusterState["previous"]>;
    const url = writableSessionUrl(databaseUrl);
    const running = this.role;
    if (running.kind === "standby" && running.topics.data === previous.topics.data) {
      // The running applier reaches the end sooner than a new one could start.
      await this.until(state.epoch, () =>
        BigInt(running.service.status().nextOffset) >= end ? true : undefined,
      );
      await this.stopService();
    } else {
      await this.stopService();
      await drainStandby({ config, kafka, logger, standby: { name, url }, topics: previous.topics, end });
    }
    this.role = { kind: "switching", from: previous.epoch, epoch: state.epoch };
    const held = await (await databaseFacts(url, config)).positionOn(previous.topics.data);
    if (held === null || held < end) {
      throw new NodeRoleError(
        `node ${name} drained ${previous.topics.data} only to offset ${held ?? "none"}, not to its end ${end}: it cannot take part in epoch ${state.epoch}; look at its applier's last error and restart the node`,
      );
    }
    logger.info(
      { topic: previous.topics.data, endOffset: end.toString() },
      "drained the previous epoch's topic",
    );
    if (state.primary !== name) {
      await this.followNewPrimary(state);
      return;
    }
    const admin = kafka.admin();
    await admin.connect();
    try {
      const source = await becomeSource({ config, admin, logger, url, newTopics: state.topics });
      this.sourceId = source.sourceId.toString(16);
      for (const s of source.sequencesAdvanced) logger.info(s, "sequence advanced");
    } finally {
      await closeQuietly(admin.disconnect());
    }
    this.writableAt = null;
    await this.startPrimary(state);
  }

  private async followNewPrimary(state: ClusterState): Promise<void> {
    const sourceId = await this.until(state.epoch, (_s, view) => {
      const report = view.reports.get(state.primary);
      return report?.epoch === state.epoch && report.role === "primary" && report.sourceId
        ? report.sourceId
        : undefined;
    });
    await pointStandbyAt({
      config: this.options.config,
      standby: { name: this.options.name, url: writableSessionUrl(this.options.databaseUrl) },
      topics: state.topics,
      sourceId: BigInt(`0x${sourceId}`),
      epoch: state.epoch,
    });
    await this.startStandby(state);
  }

  /**
   * A primary the cluster left behind: fenced. With automatic rejoin the next
   * step (actOn, fenced) makes it a standby of the new primary; without, it
   * stays fenced until `diffrelay rejoin`.
   */
  private async fenceStale(state: ClusterState, why: string): Promise<void> {
    const { logger, autoRejoin } = this.options;
    await this.stopService();
    this.nodeMetrics.fenced.set(1);
    this.writableAt = null;
    const released = await fenceStalePrimary(this.options.databaseUrl, this.options.config);
    this.logZeroLossRelease(released);
    const next = autoRejoin
      ? `it rejoins as a standby of ${state.primary} by itself (automatic rejoin): it reports those transactions, then undoes them (or re-seeds)`
      : `automatic rejoin is off (--manual-rejoin): run \`diffrelay rejoin\` to make it an exact standby of ${state.primary}, then restart the node`;
    const reason = `${why}. Its database is now fenced (read-only, accepts no connections); what it committed that never reached Kafka is on no other node; ${next}`;
    this.role = { kind: "fenced", epoch: state.epoch, reason };
    this.lastError = reason;
    logger.error({ epoch: state.epoch, primary: state.primary }, reason);
  }

  private logZeroLossRelease(outcome: ZeroLossRelease): void {
    const { logger } = this.options;
    if (outcome === "released") {
      logger.info(
        "synchronous_standby_names named this database's capture, which will not run here again: reset (ALTER SYSTEM RESET), so commits on this server no longer wait for it",
      );
    } else if (outcome === "still-set") {
      logger.error(
        "synchronous_standby_names still names this database's capture after ALTER SYSTEM RESET (it is set in postgresql.conf): commits on this server that wait for a synchronous standby wait forever; remove it there and reload",
      );
    } else if (outcome === "not-permitted") {
      logger.error(
        "synchronous_standby_names names this database's capture, which will not run here again, and this node's role may not reset it: commits on this server that wait for a synchronous standby wait forever; remove it (ALTER SYSTEM RESET synchronous_standby_names; SELECT pg_reload_conf()) or GRANT ALTER SYSTEM ON PARAMETER synchronous_standby_names to the node's role",
      );
    }
  }

  /**
   * A fenced stale primary becomes an exact standby of the new primary:
   * operations/rejoin finds the transactions it committed that never reached
   * Kafka, records and reports them, undoes them (or re-seeds), and leaves the
   * database positioned on the new topic, where the applier starts; when the
   * cluster moved more than once since, it applies each epoch between to its
   * drained end first (catchUpWithCluster). A failure leaves the node fenced, saying why; it is tried again only at a
   * later epoch or a restart, never in a loop.
   */
  private async rejoinAsStandby(state: ClusterState): Promise<void> {
    const { logger } = this.options;
    this.rejoinTriedAt = state.epoch;
    this.rejoin = {
      state: "rejoining",
      epoch: state.epoch,
      at: new Date().toISOString(),
      report: null,
      error: null,
    };
    await this.report();
    let newPrimary = `${state.primary}'s database`;
    let report: RejoinReport;
    let target: { epoch: number; topics: ClusterState["topics"] };
    try {
      const options = this.catchUpOptions(state, true);
      const caughtUp = await catchUpWithCluster({
        ...options,
        primaryDatabase: async (primary, epoch) => {
          const found = await options.primaryDatabase(primary, epoch);
          newPrimary = `${primary}'s database ${databaseAddress(found.url)} (as user ${decodeURIComponent(new URL(found.url).username)}; --peer-user, --peer-password)`;
          return found;
        },
      });
      report = caughtUp.report as RejoinReport;
      target = caughtUp.target;
    } catch (err) {
      if (err instanceof Superseded) throw err;
      await this.rejoinFailed(state, err, newPrimary);
      return;
    }
    this.rejoin = {
      state: "rejoined",
      epoch: state.epoch,
      at: new Date().toISOString(),
      report,
      error: null,
    };
    this.nodeMetrics.rejoins.inc({ outcome: report.method });
    this.nodeMetrics.unpublished.set(report.unpublished.length);
    this.nodeMetrics.fenced.set(0);
    this.lastError = null;
    logger.warn(
      {
        epoch: state.epoch,
        primary: state.primary,
        method: report.method,
        unpublished: report.unpublished.length,
        reportId: report.reportId,
      },
      `rejoined as a standby of ${state.primary}:\n${renderRejoinReport(report)}`,
    );
    await this.startStandby({ ...state, epoch: target.epoch, topics: target.topics });
  }

  private async rejoinFailed(state: ClusterState, err: unknown, newPrimary: string): Promise<void> {
    const { config, databaseUrl, logger, name } = this.options;
    const error = redactError(err);
    const reason =
      `node ${name}'s database is fenced (a stale primary; the cluster is at epoch ${state.epoch} with primary ${state.primary}) and its automatic rejoin, from ${newPrimary}, failed: ${error}. ` +
      "It is not tried again until the cluster moves to another epoch or the node restarts. Fix the cause and restart the node, or run " +
      `diffrelay rejoin --cluster ${this.options.cluster} --standby-url <this database> --standby-name ${name} --source-url <${state.primary}'s database> ` +
      `(with this node's --brokers, --topic-prefix ${config.topicPrefix}, --slot and --publication) and restart the node`;
    // One turn of the event loop: /status never shows the failure without its reason.
    this.rejoin = { state: "failed", epoch: state.epoch, at: new Date().toISOString(), report: null, error };
    this.role = { kind: "fenced", epoch: state.epoch, reason };
    this.lastError = reason;
    this.nodeMetrics.rejoins.inc({ outcome: "failed" });
    logger.error({ err, epoch: state.epoch, primary: state.primary }, reason);
    // Rejoin lets sessions connect again (read-only) before it repairs; a failed one closes them off again.
    await fenceStalePrimary(databaseUrl, config).catch((fenceErr) =>
      logger.error({ err: fenceErr }, "could not fence the database again after the failed rejoin"),
    );
  }

  /**
   * Waits until the state of `epoch` gives `accept` a value. Superseded when a
   * later epoch appears; a timeout is an error naming the step.
   */
  private async until<T>(
    epoch: number,
    accept: (state: ClusterState, view: ClusterView) => T | undefined,
    limit: "bounded" | "unbounded" = "bounded",
  ): Promise<T> {
    let deadline = Date.now() + STEP_TIMEOUT_MS;
    for (;;) {
      if (this.stopping) throw new Superseded("stopping");
      const view = this.view;
      const state = view?.state;
      if (view && state) {
        if (state.epoch > epoch) throw new Superseded(`epoch ${state.epoch}`);
        const value = accept(state, view);
        if (value !== undefined) return value;
      }
      if (Date.now() > deadline && limit === "unbounded") {
        this.options.logger.warn(
          { epoch, phase: state?.phase ?? null, waitedMs: STEP_TIMEOUT_MS },
          `the role change to epoch ${epoch} waits for the old primary ${state?.previous?.primary ?? "?"} to fence itself; this node goes on as it was. If that primary is down: diffrelay failover --to <standby>`,
        );
        deadline = Date.now() + STEP_TIMEOUT_MS;
      } else if (Date.now() > deadline) {
        throw new NodeRoleError(
          `node ${this.options.name}: the role change to epoch ${epoch} did not progress within ${STEP_TIMEOUT_MS} ms (phase ${state?.phase ?? "none"}): see the other nodes' /status and \`diffrelay list\``,
        );
      }
      await this.nextView(100);
    }
  }

  private nextView(timeoutMs = REPORT_INTERVAL_MS): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** A service that stops on its own with an error stops the node (its error policy said so). */
  private watch(running: Promise<void>, what: string): Promise<void> {
    return running.catch((err) => {
      this.lastError = `${what}: ${redactError(err)}`;
      this.failure = err;
      this.wake();
    });
  }

  private async stopService(): Promise<void> {
    const role = this.role;
    if (role.kind !== "primary" && role.kind !== "standby") return;
    await role.service.stop();
    await role.done;
  }

  private async readSourceId(): Promise<string> {
    const identity = await withDatabase(
      writableSessionUrl(this.options.databaseUrl),
      this.options.config,
      (c) => identifySource(c),
    );
    return computeSourceId(identity.systemIdentifier, identity.databaseName).toString(16);
  }

  private async report(): Promise<void> {
    const role = this.role;
    const report: NodeReport = {
      node: this.options.name,
      epoch: "epoch" in role ? role.epoch : -1,
      role: role.kind,
      ready: role.kind === "primary" || role.kind === "standby",
      fencedEndOffset: this.fencedEndOffset,
      fencedAt: this.fencedAt,
      writableAt: this.writableAt,
      sourceId: role.kind === "primary" ? this.sourceId : null,
      lagMs: this.lagMs(),
      lastError: this.lastError,
      databaseUrl: this.options.databaseAddress ?? databaseAddress(this.options.databaseUrl),
      rejoin: this.rejoinSummary(RECORD_CHANGES),
      at: new Date().toISOString(),
    };
    if (report.epoch < 0) return;
    await this.store.publishReport(report).catch((err) => {
      this.options.logger.warn({ err }, "could not publish this node's report to the cluster topic");
    });
  }
}
