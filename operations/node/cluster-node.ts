import type { Kafka } from "kafkajs";
import { CaptureService, createCaptureMetrics } from "../../connectors/postgres-source/index.js";
import { ApplyService, createApplyMetrics } from "../../connectors/postgres-standby/index.js";
import type { DiffrelayConfig } from "../../src/config/config-schema.js";
import { postgresClientConfig } from "../../src/config/postgres-connection.js";
import { closeQuietly } from "../../src/errors/close-quietly.js";
import { partitionOffsets } from "../../src/kafka/topic-admin.js";
import { clusterDataTopics, type SourceTopics } from "../../src/kafka/topic-names.js";
import type { Logger } from "../../src/observability/logger.js";
import { redactError } from "../../src/observability/redact.js";
import {
  type ClusterMember,
  type ClusterState,
  ClusterStore,
  type ClusterView,
  EpochConflictError,
  type NodeReport,
  type RejoinSummary,
  reportedCapture,
} from "../cluster/index.js";
import { clusterFailover } from "../failover/cluster-failover.js";
import {
  decideElection,
  type ElectionDecision,
  FenceWatchdog,
  LeaseHolder,
  LeaseObserver,
  type LeaseTimings,
  monotonicClock,
} from "../lease/index.js";
import { writableSessionUrl } from "../promote/database-access.js";
import { becomeSource, drainStandby, pointStandbyAt } from "../promote/promote-steps.js";
import { catchUpWithCluster, type RejoinReport, renderRejoinReport } from "../rejoin/index.js";
import {
  applierRole,
  captureRole,
  type DatabaseObservation,
  decideStep,
  type RoleInputs,
  type RoleService,
  type RoleStep,
  STALLED_CHANGE_MS,
} from "../roles/index.js";
import { type DatabaseRoleFacts, isServerDown, NodeDatabase, type ZeroLossRelease } from "./node-database.js";
import { NodeRoleError } from "./node-errors.js";
import { createNodeMetrics } from "./node-metrics.js";
import { databaseAddress, type PeerCredentials, peerDatabaseUrl } from "./peer-database.js";
import { summarizeRejoin } from "./rejoin-summary.js";
import { ServerHeartbeat } from "./server-heartbeat.js";

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
  /** The primary's lease, as this node renews it when primary. */
  lease: LeaseTimings;
  /** This node starts elections when the primary's lease lapses (false: --manual-failover). */
  autoFailover: boolean;
  /** 0: never a candidate; higher first. */
  failoverPriority: number;
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
  | {
      kind: "primary";
      epoch: number;
      service: RoleService<ReturnType<CaptureService["status"]>>;
      done: Promise<void>;
    }
  | { kind: "standby"; epoch: number; topics: SourceTopics; service: RoleService; done: Promise<void> }
  /** Between roles, during the change from epoch `from` to `epoch`: neither capturing nor applying. */
  | { kind: "switching"; from: number; epoch: number }
  | { kind: "fenced"; epoch: number; reason: string };

/** The cluster moved past the epoch a step was taken for: act on the new one instead. */
class Superseded extends Error {}

const REPORT_INTERVAL_MS = 5000;
const MODE_WATCH_MS = 200;
/** How often the lease and the election are looked at. */
const LEASE_TICK_MS = 100;
/** A rejoin that failed on a server that did not answer is tried this many times in all, REJOIN_RETRY_MS apart, then twice that, … */
const REJOIN_ATTEMPTS = 5;
const REJOIN_RETRY_MS = 5000;
/** How often a node whose database server does not answer looks again (to fence it, or to observe it). */
const SERVER_RETRY_MS = 1000;
/** How long a capture that lost its lease may take to stop before the node goes on without it. */
const CAPTURE_STOP_MS = 10_000;
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
  private readonly database: NodeDatabase;
  private view: ClusterView | null = null;
  private wake: () => void = () => undefined;
  private role: Role = { kind: "starting" };
  private stopping = false;
  private failure: unknown = null;
  private lastError: string | null = null;
  private fencedAt: string | null = null;
  private writableAt: string | null = null;
  private fencedEndOffset: string | null = null;
  /** The hand-over this node made as the primary of epoch `from`: its database holds exactly its topic below `end`. */
  private handedOver: { from: number; end: bigint } | null = null;
  private sourceId: string | null = null;
  private rejoin: RejoinOutcome | null = null;
  /**
   * The last failed rejoin: one attempt per epoch, so a failure is never retried in a loop, except one on a
   * server that did not answer (the new primary's, restarting), tried again a few times, further apart each.
   */
  private rejoinFailure: { epoch: number; attempts: number; retryAt: number | null } | null = null;
  /** The role machine's latest step (a wait says what for, and how long the primary has been silent). */
  private lastStep: RoleStep | null = null;
  /** The zero-loss mode the last report carried (null: no capture in it). */
  private reportedZeroLoss: string | null = null;
  /** What this node has seen of the leases, on its own monotonic clock. */
  private readonly leases: LeaseObserver;
  /** The lease this node holds while primary. */
  private holder: LeaseHolder | null = null;
  /** Whether the database server answers: a primary renews its lease only while it does. */
  private readonly heartbeat: ServerHeartbeat;
  /** The fence of a lost lease that found the server down: done before anything else once it answers. */
  private fencePending = false;
  /** Fences the database should this process die or freeze while primary. */
  private watchdog: FenceWatchdog | null = null;
  /** The election (automatic failover to this node) under way, if any. */
  private election: Promise<void> | null = null;
  private lastElection: ElectionDecision | null = null;
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
    this.database = new NodeDatabase(options.databaseUrl, options.config);
    this.leases = new LeaseObserver(monotonicClock, options.lease.ttlMs);
    this.heartbeat = new ServerHeartbeat(
      () => this.database.serverAnswers(),
      monotonicClock,
      options.lease.renewMs,
    );
    this.applyMetrics = createApplyMetrics(options.name);
    this.nodeMetrics = createNodeMetrics([this.captureMetrics.registry, this.applyMetrics.registry]);
  }

  /** The metrics of the current role. */
  get registry() {
    return this.role.kind === "primary" ? this.captureMetrics.registry : this.applyMetrics.registry;
  }

  async run(): Promise<void> {
    await this.store.ensureTopic();
    const follower = await this.store.follow(
      (view) => {
        this.view = view;
        this.leases.observe(view);
        this.holder?.observe(view);
        this.wake();
      },
      (err) => {
        // Blind to the cluster state, the node may not act on the last one it saw.
        this.failure = err;
        this.wake();
      },
    );
    const timer = setInterval(() => void this.report(), REPORT_INTERVAL_MS);
    // A failover reads the zero-loss mode from the last report: a change of it goes out at once.
    const modeWatch = setInterval(() => {
      if (this.role.kind === "primary" && this.role.service.status().zeroLoss !== this.reportedZeroLoss)
        void this.report();
    }, MODE_WATCH_MS);
    const leaseTick = setInterval(() => this.watchLease(), LEASE_TICK_MS);
    try {
      while (!this.stopping) {
        if (this.failure) throw this.failure;
        if (this.lostLease()) {
          await this.fenceForLostLease();
          continue;
        }
        if (this.fencePending && !(await this.fenceWhenServerAnswers())) continue;
        let step = decideStep(this.inputs(null));
        if (step.kind === "observe-database") {
          const seen = await this.observe(step.state);
          if (seen === null) continue;
          step = decideStep(this.inputs(seen));
        }
        this.lastStep = step;
        // A decision with the database observed never asks to observe it again.
        if (step.kind === "wait" || step.kind === "observe-database") {
          await this.nextView();
          continue;
        }
        try {
          await this.take(step);
          if (step.kind !== "bootstrap") await this.report();
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
      clearInterval(modeWatch);
      clearInterval(leaseTick);
      await this.stopAsPrimary();
      // Renewals would go on (and open a new producer) after the store is closed: the process never exited.
      await this.releaseLease();
      await this.stopService();
      // Its own .catch logs and counts every failure (startElection): this promise never rejects.
      await this.election;
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
    if (this.role.kind === "primary" || this.role.kind === "standby") return this.role.service.flowing();
    return this.role.kind === "switching";
  }

  /** /primary: only the writable primary of the current epoch. */
  isWritablePrimary(): boolean {
    const state = this.view?.state;
    return (
      this.role.kind === "primary" &&
      state?.epoch === this.role.epoch &&
      state.primary === this.options.name &&
      this.writableAt !== null &&
      this.holder?.holds() === true
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
    if (!this.role.service.flowing()) return false;
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
      waitingFor: this.lastStep?.kind === "wait" ? this.lastStep.why : null,
      lease: this.leaseStatus(),
      primarySilentMs: this.lastStep?.kind === "wait" ? this.lastStep.primarySilentMs : null,
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
    const seconds = this.role.service.lagSeconds();
    return seconds === null ? null : Math.round(seconds * 1000);
  }

  /** What the next step depends on, as the pure decision takes it. */
  private inputs(database: DatabaseObservation | null): RoleInputs {
    const role = this.role;
    return {
      me: this.options.name,
      role:
        role.kind === "starting"
          ? role
          : role.kind === "switching"
            ? { kind: "switching", from: role.from, epoch: role.epoch }
            : { kind: role.kind, epoch: role.epoch },
      view: this.view,
      database,
      handedOver: this.handedOver,
      initialPrimary: this.options.initialPrimary,
      bootstrapEpoch: this.options.config.epoch,
      autoRejoin: this.options.autoRejoin,
      rejoinFailed: this.rejoinFailure,
      now: Date.now(),
    };
  }

  /** A starting node's look at its own database, for the state it starts into. */
  /** A starting node's look at its database; null when its server does not answer (it waited a moment, and looks again). */
  private async observe(state: ClusterState): Promise<DatabaseObservation | null> {
    let facts: DatabaseRoleFacts | "fenced";
    try {
      facts = await this.database.facts();
    } catch (err) {
      // A database that refuses every connection was fenced as an old primary (by an earlier run of this node or by promote).
      if ((err as { code?: string }).code === "55000") facts = "fenced";
      else if (isServerDown(err)) {
        await this.waitForServer(err, `before it takes a role in epoch ${state.epoch}`);
        return null;
      } else throw err;
    }
    this.nodeMetrics.serverDown.set(0);
    if (facts === "fenced") {
      return { connectable: false, hasCaptureSlot: false, positionOnCurrent: null, positionOnPrevious: null };
    }
    return {
      connectable: true,
      hasCaptureSlot: facts.hasCaptureSlot,
      positionOnCurrent: await facts.positionOn(state.topics.data),
      positionOnPrevious: state.previous ? await facts.positionOn(state.previous.topics.data) : null,
    };
  }

  /** Carries out one step of the role machine (operations/roles). */
  private async take(step: Exclude<RoleStep, { kind: "wait" | "observe-database" }>): Promise<void> {
    switch (step.kind) {
      case "bootstrap":
        await this.bootstrap(step.epoch, step.claim);
        return;
      case "fail":
        throw new NodeRoleError(`cluster ${this.options.cluster}: ${step.message}`);
      case "finish-change":
        await this.finishChange(step.state);
        return;
      case "start-primary":
        await this.startPrimary(step.state);
        return;
      case "start-standby":
        if (this.role.kind === "starting") {
          await this.resumeAfterRejoin(step.state, await this.database.facts());
        }
        await this.startStandby(step.state);
        return;
      case "hand-over":
        await this.handOver(step.state);
        return;
      case "follow-change":
        if (this.role.kind === "starting") {
          const previous = step.state.previous as NonNullable<ClusterState["previous"]>;
          this.role = { kind: "switching", from: previous.epoch, epoch: step.state.epoch };
        }
        await this.followChange(step.state);
        return;
      case "follow-after-hand-over": {
        const previous = step.state.previous as NonNullable<ClusterState["previous"]>;
        this.handedOver = { from: previous.epoch, end: step.end };
        this.fencedEndOffset = step.end.toString();
        if (this.role.kind === "starting")
          this.role = { kind: "switching", from: previous.epoch, epoch: step.state.epoch };
        await this.followAfterHandOver(step.state, step.end);
        return;
      }
      case "fence":
        await this.fenceStale(step.state, step.why);
        return;
      case "rejoin":
        await this.rejoinAsStandby(step.state);
        return;
      case "catch-up":
        await this.catchUp(step.state);
        return;
    }
  }

  /**
   * The first state of a cluster whose topic, read to its end, holds none:
   * this node its primary (see decideStep for when).
   */
  private async bootstrap(epoch: number, claim: boolean): Promise<void> {
    const { config, name } = this.options;
    if (claim) await this.store.claimEpoch(epoch, `node ${name} (bootstrap)`);
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
        const address = await this.until(
          state.epoch,
          `${primary} reporting its database as the ready primary of epoch ${epoch}`,
          (_s, view) => {
            const r = view.reports.get(primary);
            return r?.epoch === epoch && r.role === "primary" && r.ready && r.databaseUrl
              ? r.databaseUrl
              : undefined;
          },
        );
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
    const { logger } = this.options;
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
      await this.database.dropCaptureSlot(30_000);
    }
  }

  private async startPrimary(state: ClusterState): Promise<void> {
    const { config, databaseUrl, logger } = this.options;
    await this.acquireLease(state);
    // A database fenced by this node's stop, its lost lease or its watchdog: it holds the lease again.
    await this.database.setConnectable(true);
    // What this node's first report says of the mode, before the capture's first session reads it again.
    const zeroLossInForce = await this.database.zeroLossInForce();
    // In zero-loss mode clients may write only once their commits wait for the capture (below): until then
    // a commit would return before Kafka has it, and a node killed at that moment would lose it.
    if (!config.capture.zeroLoss) await this.database.setReadOnly(false);
    this.sourceId ??= await this.database.sourceId();
    const service = new CaptureService({
      // Its own sessions write (its schema, heartbeats) while the database may still be read-only for clients.
      config: {
        ...config,
        epoch: state.epoch,
        source: { url: writableSessionUrl(databaseUrl), tls: config.standby?.tls },
      },
      topics: state.topics,
      kafka: this.options.kafka,
      logger: logger.child({ role: "primary", epoch: state.epoch }),
      metrics: this.captureMetrics,
      zeroLossInForce,
      mayAcknowledge: () => this.holder?.holds() === true,
    });
    const role = captureRole(service);
    this.role = {
      kind: "primary",
      epoch: state.epoch,
      service: role,
      done: this.watch(role.run(), "capture"),
    };
    if (config.capture.zeroLoss) {
      await this.until(
        state.epoch,
        "its capture streaming as the synchronous standby that commits wait for (zero-loss mode), before clients may write",
        () => {
          // A capture that stopped on an error ends the wait: the node stops with it.
          if (this.failure) throw this.failure;
          const capture = service.status();
          return capture.zeroLoss === "required" && capture.syncState === "sync" ? true : undefined;
        },
      );
      await this.database.setReadOnly(false);
    }
    this.writableAt ??= new Date().toISOString();
    logger.info({ epoch: state.epoch, topic: state.topics.data }, "primary: capturing");
  }

  /**
   * Holds the lease of `state`'s epoch before the database may take writes:
   * a renewal read back from the cluster topic with this node still its
   * primary (operations/lease). The watchdog is armed from then on.
   */
  private async acquireLease(state: ClusterState): Promise<void> {
    const { config, databaseUrl, lease, logger, name } = this.options;
    this.holder?.stop();
    this.heartbeat.start();
    await this.heartbeat.check();
    const holder = new LeaseHolder({
      me: name,
      epoch: state.epoch,
      timings: lease,
      clock: monotonicClock,
      publish: (record) => this.store.publishLease(record),
      logger,
      onExtended: (validForMs) => this.watchdog?.arm(validForMs),
      // A server that died under this living node: the lease lapses, and the standbys elect.
      withholdRenewal: () => this.heartbeat.silence(lease.ttlMs),
    });
    this.holder = holder;
    holder.start();
    if (this.view) holder.observe(this.view);
    await this.until(state.epoch, "its lease renewal read back from the cluster topic", () =>
      holder.holds() ? true : undefined,
    );
    // With automatic failover off (--manual-failover) nobody is promoted without an operator, and a dead
    // node's database stays as it was, as before leases: the operator's `diffrelay failover` decides.
    if (this.options.autoFailover) {
      this.watchdog ??= new FenceWatchdog({ node: name, databaseUrl, config }, logger);
      this.watchdog.arm(holder.remainingMs());
    }
    logger.info(
      { epoch: state.epoch, ttlMs: lease.ttlMs, renewMs: lease.renewMs },
      "holds the primary's lease",
    );
  }

  /**
   * The primary of the current state whose lease lapsed. (One the cluster has
   * left behind loses its lease too, but fences as a stale primary instead.)
   */
  private lostLease(): boolean {
    const state = this.view?.state;
    // With automatic failover off nobody is elected behind its back: the lease only gates its capture's
    // confirmations, and the operator's `diffrelay failover` waits it out (a frozen primary that thaws into a
    // switchover then hands over as before leases).
    return (
      this.options.autoFailover &&
      this.role.kind === "primary" &&
      this.holder !== null &&
      !this.holder.holds() &&
      state?.epoch === this.role.epoch &&
      state.primary === this.options.name
    );
  }

  /** The lease is no longer this node's to hold: it fenced (or handed over) its database itself. */
  private async releaseLease(): Promise<void> {
    this.holder?.stop();
    this.holder = null;
    this.heartbeat.stop();
    this.nodeMetrics.leaseRemaining.set(Number.NaN);
    await this.watchdog?.disarm();
    this.watchdog = null;
  }

  /**
   * The primary could not renew its lease in time (Kafka unreachable, or this
   * process paused): the standbys may elect another primary once its TTL has
   * passed, so its database stops taking writes now, before that. The capture
   * confirms nothing more meanwhile. It then starts over: the primary again
   * once it holds the lease (the cluster did not move), else a stale primary.
   */
  private async fenceForLostLease(): Promise<void> {
    const { logger, name } = this.options;
    const lapsedMs = Math.round(-(this.holder?.remainingMs() ?? 0));
    const epoch = this.role.kind === "primary" ? this.role.epoch : -1;
    const serverSilence = this.heartbeat.silence(this.options.lease.ttlMs);
    const why = serverSilence
      ? `withheld its lease renewals because ${serverSilence}`
      : "could not renew its lease through the cluster topic in time";
    const check = serverSilence ? "Check its database server" : "Check its connection to Kafka";
    const reason =
      `node ${name}, the primary of epoch ${epoch}, ${why} (lapsed ${lapsedMs} ms ago): ` +
      "it fences its database (no connections, sessions ended) before the standbys may elect another primary; " +
      `it takes the lease back and serves again if the cluster did not move, else it rejoins as a standby. ${check}`;
    this.writableAt = null;
    this.fencedAt = new Date().toISOString();
    this.lastError = reason;
    this.nodeMetrics.leaseLost.inc();
    this.nodeMetrics.fenced.set(1);
    logger.error({ epoch, lapsedMs }, reason);
    // The database first: stopping the capture may wait for a Kafka that does not answer.
    this.fencePending = true;
    await this.fenceWhenServerAnswers();
    await this.releaseLease();
    const stopped = await Promise.race([
      this.stopService().then(() => true),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(false), CAPTURE_STOP_MS)),
    ]);
    if (!stopped)
      logger.error(
        { epoch },
        `the capture did not stop within ${CAPTURE_STOP_MS} ms after the lease was lost; the node goes on without it`,
      );
    this.role = { kind: "starting" };
    await this.report();
  }

  /** Marks stable the change that made this node the primary, left at `promoting` by a command or election that died. */
  private async finishChange(state: ClusterState): Promise<void> {
    const { logger, name } = this.options;
    try {
      await this.store.publishState({
        ...state,
        phase: "stable",
        writtenBy: `node ${name}`,
        writtenAt: new Date().toISOString(),
      });
    } catch (err) {
      // The cluster moved on meanwhile: the next step follows it.
      if (err instanceof EpochConflictError) return;
      throw err;
    }
    logger.warn(
      { epoch: state.epoch, from: state.previous?.primary ?? null },
      `the failover to ${name} (epoch ${state.epoch}) was left at phase promoting by its command or election, which ended before marking it stable; ${name} has served for ${STALLED_CHANGE_MS / 1000} s since: marked it stable`,
    );
    await this.until(state.epoch, "its stable state read back from the cluster topic", (s) =>
      s.phase === "stable" ? true : undefined,
    );
  }

  /** A primary's node that stops fences its database: its lease lapses, and the standbys may elect another. */
  private async stopAsPrimary(): Promise<void> {
    if (this.role.kind !== "primary" || !this.holder || !this.options.autoFailover) return;
    this.options.logger.warn(
      "the primary's node stops: its database is fenced (no connections) and its lease lapses; the same command line takes it back if no standby was elected meanwhile",
    );
    this.writableAt = null;
    try {
      this.logZeroLossRelease(await this.database.fenceStale());
    } catch (err) {
      // The lease is released below all the same: a stopping node must not keep the cluster from electing.
      this.options.logger.error(
        { err },
        "the stopping primary's node could not fence its database: its lease lapses all the same; if the server comes back before this node starts again, ALTER DATABASE … ALLOW_CONNECTIONS false from another database, or start the node (it fences it first)",
      );
    }
    await this.releaseLease();
  }

  /**
   * The fence a lost lease owes, once the server answers: true when done (or
   * not owed), false when the server is still down (this node waited a moment).
   * A down server takes no writes; one that comes back is fenced before this
   * node does anything else, within SERVER_RETRY_MS of its first answer.
   */
  private async fenceWhenServerAnswers(): Promise<boolean> {
    if (!this.fencePending) return true;
    try {
      this.logZeroLossRelease(await this.database.fenceStale());
      this.fencePending = false;
      this.nodeMetrics.serverDown.set(0);
      return true;
    } catch (err) {
      if (!isServerDown(err)) throw err;
      await this.waitForServer(err, "to fence it (its lease lapsed)");
      return false;
    }
  }

  /** The database server does not answer: said in /status (waitingFor), logged, and looked at again in a moment. */
  private async waitForServer(err: unknown, what: string): Promise<void> {
    const why = `its database server, which does not answer (${redactError(err)}), ${what}`;
    if (this.lastStep?.kind !== "wait" || this.lastStep.why !== why)
      this.options.logger.error({ err }, `node ${this.options.name} waits for ${why}`);
    this.lastStep = { kind: "wait", why, primarySilentMs: null };
    this.nodeMetrics.serverDown.set(1);
    await this.nextView(SERVER_RETRY_MS);
  }

  /** Every LEASE_TICK_MS: the primary's own lease, and on a standby whether to start an election. */
  private watchLease(): void {
    const state = this.view?.state;
    this.nodeMetrics.writablePrimary.set(this.isWritablePrimary() ? 1 : 0);
    if (state) this.nodeMetrics.clusterEpoch.set(state.epoch);
    if (state) this.nodeMetrics.leaseAge.set(this.leases.silentMs() / 1000);
    if (state) this.nodeMetrics.leaseTtl.set(this.leases.ttlOf(state.primary) / 1000);
    if (this.holder) {
      this.lastElection = null;
      this.nodeMetrics.leaseRemaining.set(this.holder.remainingMs() / 1000);
      if (this.lostLease()) this.wake();
      return;
    }
    if (!this.view || !state || this.election || this.stopping) return;
    if (this.role.kind !== "standby" && this.role.kind !== "switching") {
      this.lastElection = null;
      return;
    }
    const decision = decideElection({
      me: this.options.name,
      view: this.view,
      autoFailover: this.options.autoFailover,
      silentMs: this.leases.silentMs(),
      ttlMs: this.leases.ttlOf(state.primary),
      stalledChangeMs: STALLED_CHANGE_MS,
    });
    this.lastElection = decision;
    if (decision.kind === "elect") this.startElection(decision.why);
  }

  /** An automatic failover to this node, run beside the node's own loop (which plays its part as for any failover). */
  private startElection(why: string): void {
    const { config, kafka, logger, name, cluster, lease } = this.options;
    const started = monotonicClock();
    this.nodeMetrics.elections.inc({ outcome: "started" });
    logger.warn({ why }, "automatic failover: this node claims the next epoch");
    this.election = clusterFailover({
      config,
      kafka,
      store: this.store,
      logger: logger.child({ election: true }),
      cluster,
      to: name,
      settleTimeoutMs: STEP_TIMEOUT_MS,
      leaseSight: { observer: this.leases, view: () => this.view },
      defaultLeaseTtlMs: lease.ttlMs,
    })
      .then((report) => {
        const seconds = (monotonicClock() - started) / 1000;
        this.nodeMetrics.elections.inc({ outcome: "won" });
        this.nodeMetrics.failoverSeconds.set(seconds);
        logger.warn(
          { epoch: report.epoch, oldPrimary: report.oldPrimary.name, seconds, mayBeLost: report.mayBeLost },
          `automatic failover: ${name} is the primary of epoch ${report.epoch} (was ${report.oldPrimary.name}), ${seconds.toFixed(2)} s after its election started`,
        );
      })
      .catch((err: unknown) => {
        if (err instanceof EpochConflictError) {
          this.nodeMetrics.elections.inc({ outcome: "lost" });
          logger.info(
            { err },
            "automatic failover: another node claimed the epoch first; this node follows it",
          );
          return;
        }
        this.nodeMetrics.elections.inc({ outcome: "failed" });
        this.lastError = `automatic failover to ${name}: ${redactError(err)}`;
        logger.error({ err }, "automatic failover failed");
      })
      .finally(() => {
        this.election = null;
      });
  }

  private leaseStatus(): object | null {
    const state = this.view?.state;
    if (!state) return null;
    const renewal = this.view?.leases.get(state.primary);
    const election = this.lastElection;
    return {
      holder: renewal?.epoch === state.epoch ? state.primary : null,
      epoch: state.epoch,
      ttlMs: this.leases.ttlOf(state.primary),
      ageMs: Math.round(this.leases.silentMs()),
      heldForMs: this.holder ? Math.round(this.holder.remainingMs()) : null,
      // The holder renews only while its server answers: why it withholds its renewals, null while it renews.
      renewalsWithheld: this.holder ? this.heartbeat.silence(this.options.lease.ttlMs) : null,
      failoverInMs: election?.kind === "none" ? election.failoverInMs : election ? 0 : null,
      election: election?.why ?? null,
      electionRunning: this.election !== null,
    };
  }

  private async startStandby(state: ClusterState): Promise<void> {
    const { config, logger, name } = this.options;
    // Client sessions opened from now on cannot write; the applier's own session overrides it.
    await this.database.setReadOnly(true);
    const service = new ApplyService({
      config: { ...config, epoch: state.epoch },
      standbyName: name,
      standbyUrl: this.database.writableUrl,
      topics: state.topics,
      kafka: this.options.kafka,
      logger: logger.child({ role: "standby", epoch: state.epoch }),
      metrics: this.applyMetrics,
    });
    const applier = applierRole(service);
    this.role = {
      kind: "standby",
      epoch: state.epoch,
      topics: state.topics,
      service: applier,
      done: this.watch(applier.run(), "applier"),
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
    const { logger } = this.options;
    const previous = state.previous as NonNullable<ClusterState["previous"]>;
    this.fencedAt = new Date().toISOString();
    this.fencedEndOffset = null;
    this.writableAt = null;
    const fence = await this.database.fenceForHandOver(() =>
      this.role.kind === "primary" ? this.role.service.clientBackendPids() : [],
    );
    if (fence.alive !== true)
      throw new Error(`node could not reach its own database to fence it: ${fence.reason}`);
    await this.releaseLease();
    await this.stopService();
    this.role = { kind: "switching", from: previous.epoch, epoch: state.epoch };
    const admin = this.options.kafka.admin();
    await admin.connect();
    try {
      const end = (await partitionOffsets(admin, previous.topics.data)).high;
      this.fencedEndOffset = end.toString();
      this.handedOver = { from: previous.epoch, end };
    } finally {
      await closeQuietly(admin.disconnect());
    }
    // The capture is stopped with everything committed published: no commit waits for it any more.
    this.logZeroLossRelease(await this.database.releaseZeroLoss());
    await this.database.setConnectable(true);
    await this.database.dropCaptureSlot(30_000);
    logger.info(
      { fencedAt: fence.fencedAt, topic: previous.topics.data, endOffset: this.fencedEndOffset },
      "fenced for the switchover: everything committed here is in the old topic",
    );
    await this.report();
    await this.followNewPrimary(state);
  }

  /**
   * A standby's part of a role change: hold exactly the old topic up to its
   * drained end, then follow or become the new primary. The old primary that
   * handed over already holds exactly that (its fence's end) and follows.
   */
  private async followChange(state: ClusterState): Promise<void> {
    const { config, kafka, logger, name } = this.options;
    const previous = state.previous as NonNullable<ClusterState["previous"]>;
    const url = this.database.writableUrl;
    if (state.phase !== "fencing") {
      // Without the old primary's fence, it may still publish past the end this change takes:
      // the applier stops now, before that end is known, and a drain bounded by it does the rest.
      await this.stopService();
      this.role = { kind: "switching", from: previous.epoch, epoch: state.epoch };
      await this.report();
    }
    // Unbounded: until the old primary fences, this standby's applier goes on, and the switchover
    // that waits for the fence is the one that says it stalled (and that a failover ends it).
    const end = await this.until(state.epoch, "the old topic's drained end", (s) =>
      s.previous?.drainedEndOffset ? BigInt(s.previous.drainedEndOffset) : undefined,
    );
    const running = this.role;
    if (
      running.kind === "standby" &&
      running.topics.data === previous.topics.data &&
      this.fenceEndOf(previous.primary, state.epoch) === end
    ) {
      // The old primary fenced at this end and can publish nothing after it: the running applier
      // reaches it sooner than a new one could start, and cannot pass it.
      await this.until(state.epoch, "the applier reaching the drained end", () =>
        (running.service.appliedThrough() ?? 0n) >= end ? true : undefined,
      );
      await this.stopService();
    } else {
      await this.stopService();
      await drainStandby({ config, kafka, logger, standby: { name, url }, topics: previous.topics, end });
    }
    this.role = { kind: "switching", from: previous.epoch, epoch: state.epoch };
    const held = await (await this.database.facts()).positionOn(previous.topics.data);
    if (held !== end) {
      throw new NodeRoleError(
        held !== null && held > end
          ? `node ${name} applied ${previous.topics.data} to offset ${held}, past the drained end ${end} of the change to epoch ${state.epoch}: ` +
              `it holds changes of the old primary ${previous.primary} that the new primary ${state.primary} does not, and cannot follow it; re-seed it from ${state.primary} and start the node again`
          : `node ${name} drained ${previous.topics.data} only to offset ${held ?? "none"}, not to its end ${end}: it cannot take part in epoch ${state.epoch}; look at its applier's last error and restart the node`,
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

  /** The old primary's fence end as its report for `epoch` gives it, if it fenced for that change. */
  private fenceEndOf(node: string, epoch: number): bigint | null {
    const report = this.view?.reports.get(node);
    return report?.epoch === epoch && report.fencedEndOffset !== null ? BigInt(report.fencedEndOffset) : null;
  }

  /**
   * The old primary after its hand-over, in a change that a later one
   * superseded (a failover out of a switchover that gave up): it holds
   * exactly the old topic up to its fence's end, which must be the end the
   * change drained to.
   */
  private async followAfterHandOver(state: ClusterState, fenced: bigint): Promise<void> {
    const previous = state.previous as NonNullable<ClusterState["previous"]>;
    const end = await this.until(state.epoch, "the old topic's drained end", (s) =>
      s.previous?.drainedEndOffset ? BigInt(s.previous.drainedEndOffset) : undefined,
    );
    if (fenced !== end) {
      throw new NodeRoleError(
        `node ${this.options.name} was the primary of epoch ${previous.epoch} and fenced at offset ${fenced} of ${previous.topics.data}, ` +
          `but the change to epoch ${state.epoch} drained it to ${end}: its database is not known to hold exactly that; ` +
          `re-seed it from ${state.primary} and start the node again`,
      );
    }
    await this.followNewPrimary(state);
  }

  private async followNewPrimary(state: ClusterState): Promise<void> {
    const sourceId = await this.until(
      state.epoch,
      `${state.primary} reporting itself primary`,
      (_s, view) => {
        const report = view.reports.get(state.primary);
        return report?.epoch === state.epoch && report.role === "primary" && report.sourceId
          ? report.sourceId
          : undefined;
      },
    );
    await pointStandbyAt({
      config: this.options.config,
      standby: { name: this.options.name, url: this.database.writableUrl },
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
    let released: ZeroLossRelease;
    try {
      released = await this.database.fenceStale();
    } catch (err) {
      if (!isServerDown(err)) throw err;
      // A server that is down takes no writes: the loop fences it before anything else once it answers
      // (fenceWhenServerAnswers), then this node starts over from what its database holds.
      this.fencePending = true;
      await this.releaseLease();
      this.role = { kind: "starting" };
      this.lastError = `${why}. Its database server does not answer (${redactError(err)}): the node fences it as soon as it does, then rejoins it`;
      logger.error({ epoch: state.epoch, primary: state.primary }, this.lastError);
      return;
    }
    await this.releaseLease();
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
    this.rejoinFailure = null;
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
    const { config, logger, name } = this.options;
    const error = redactError(err);
    const attempts = this.rejoinFailure?.epoch === state.epoch ? this.rejoinFailure.attempts + 1 : 1;
    const retryInMs =
      isServerDown(err) && attempts < REJOIN_ATTEMPTS ? REJOIN_RETRY_MS * 2 ** (attempts - 1) : null;
    this.rejoinFailure = {
      epoch: state.epoch,
      attempts,
      retryAt: retryInMs === null ? null : Date.now() + retryInMs,
    };
    const next =
      retryInMs === null
        ? "It is not tried again until the cluster moves to another epoch or the node restarts."
        : `A server did not answer: it is tried again in ${retryInMs} ms (attempt ${attempts} of ${REJOIN_ATTEMPTS}).`;
    const reason =
      `node ${name}'s database is fenced (a stale primary; the cluster is at epoch ${state.epoch} with primary ${state.primary}) and its automatic rejoin, from ${newPrimary}, failed: ${error}. ` +
      `${next} Fix the cause and restart the node, or run ` +
      `diffrelay rejoin --cluster ${this.options.cluster} --standby-url <this database> --standby-name ${name} --source-url <${state.primary}'s database> ` +
      `(with this node's --brokers, --topic-prefix ${config.topicPrefix}, --slot and --publication) and restart the node`;
    // One turn of the event loop: /status never shows the failure without its reason.
    this.rejoin = { state: "failed", epoch: state.epoch, at: new Date().toISOString(), report: null, error };
    this.role = { kind: "fenced", epoch: state.epoch, reason };
    this.lastError = reason;
    this.nodeMetrics.rejoins.inc({ outcome: "failed" });
    logger.error({ err, epoch: state.epoch, primary: state.primary }, reason);
    // Rejoin lets sessions connect again (read-only) before it repairs; a failed one closes them off again.
    await this.database
      .fenceStale()
      .catch((fenceErr) =>
        logger.error({ err: fenceErr }, "could not fence the database again after the failed rejoin"),
      );
  }

  /**
   * Waits until the state of `epoch` gives `accept` a value. Superseded when a
   * later epoch appears: a change that does not progress is ended by a later
   * one (failover), never by this node giving up its part halfway, so the wait
   * has no limit; it warns every STEP_TIMEOUT_MS, naming what it waits for.
   */
  private async until<T>(
    epoch: number,
    waitingFor: string,
    accept: (state: ClusterState, view: ClusterView) => T | undefined,
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
      if (Date.now() > deadline) {
        this.options.logger.warn(
          { epoch, phase: state?.phase ?? null, waitedMs: STEP_TIMEOUT_MS },
          `the role change to epoch ${epoch} (phase ${state?.phase ?? "none"}) waits for ${waitingFor}; this node goes on as it is. ` +
            `See diffrelay list; if a node it waits for is gone: diffrelay failover --cluster ${this.options.cluster} --to <a standby>`,
        );
        deadline = Date.now() + STEP_TIMEOUT_MS;
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
      databaseUrl: databaseAddress(this.options.databaseAddress ?? this.options.databaseUrl),
      rejoin: this.rejoinSummary(RECORD_CHANGES),
      capture: role.kind === "primary" ? reportedCapture(role.service.status()) : null,
      failoverPriority: this.options.failoverPriority,
      autoFailover: this.options.autoFailover,
      appliedOffset: role.kind === "standby" ? (role.service.appliedThrough()?.toString() ?? null) : null,
      at: new Date().toISOString(),
    };
    if (report.epoch < 0) return;
    this.reportedZeroLoss = report.capture?.zeroLoss ?? null;
    await this.store.publishReport(report).catch((err) => {
      this.options.logger.warn({ err }, "could not publish this node's report to the cluster topic");
    });
  }
}
