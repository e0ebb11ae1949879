import type { Admin, Kafka, Producer } from "kafkajs";
import { closeQuietly } from "../../src/errors/close-quietly.js";
import { orderedProducer } from "../../src/kafka/kafka-client.js";
import { createSinglePartitionTopic, type TopicDurabilitySettings } from "../../src/kafka/topic-admin.js";
import { claimedEpoch, clusterStateTopic, epochClaimTopic } from "../../src/kafka/topic-names.js";
import { startTopicReader } from "../../src/kafka/topic-reader.js";
import type { Logger } from "../../src/observability/logger.js";
import { EpochConflictError } from "./cluster-errors.js";
import {
  type ClusterState,
  type ClusterView,
  decodeRecord,
  encodeRecord,
  type LeaseRecord,
  type NodeReport,
} from "./cluster-state.js";

export interface ClusterStoreOptions {
  kafka: Kafka;
  logger: Logger;
  topicPrefix: string;
  cluster: string;
  /** The data topics' durability settings: the cluster topic and the claims get the same. */
  durability: TopicDurabilitySettings;
}

/** A running follow(); stop() ends it. */
export interface ClusterFollower {
  stop(): Promise<void>;
}

const READ_TIMEOUT_MS = 30_000;

/** See index.ts for the contract. */
export class ClusterStore {
  readonly topic: string;
  private admin: Admin | null = null;
  private producer: Producer | null = null;

  constructor(private readonly options: ClusterStoreOptions) {
    this.topic = clusterStateTopic(options.topicPrefix, options.cluster);
  }

  /** Creates the cluster topic when it is missing. */
  async ensureTopic(): Promise<void> {
    const admin = await this.connectedAdmin();
    if ((await admin.listTopics()).includes(this.topic)) return;
    await createSinglePartitionTopic(admin, this.topic, {
      compact: true,
      durability: this.options.durability,
    });
  }

  /** The highest claimed epoch, -1 when none is. */
  async highestClaim(): Promise<number> {
    return Math.max(-1, ...(await this.claims()));
  }

  /** Every claimed epoch (claims are never removed). */
  private async claims(): Promise<Set<number>> {
    const { topicPrefix, cluster } = this.options;
    const claimed = new Set<number>();
    for (const topic of await (await this.connectedAdmin()).listTopics()) {
      const epoch = claimedEpoch(topicPrefix, cluster, topic);
      if (epoch !== null) claimed.add(epoch);
    }
    return claimed;
  }

  /**
   * Claims `epoch` by creating its claim topic. Fails (EpochConflictError,
   * nothing changed) when that epoch or a higher one is already claimed.
   */
  async claimEpoch(epoch: number, claimant: string): Promise<void> {
    const highest = await this.highestClaim();
    if (highest >= epoch) {
      throw new EpochConflictError(
        `cluster ${this.options.cluster}: epoch ${epoch} cannot be claimed by ${claimant}, epoch ${highest} is already claimed: ` +
          "another role change ran at the same time or first; nothing was changed. Run `diffrelay list` and try again if still wanted. " +
          `If no role change is running and epoch ${highest} has no state (its claimant died between claim and publish), ` +
          `diffrelay failover claims above it; a switchover needs its claim topic ${epochClaimTopic(this.options.topicPrefix, this.options.cluster, highest)} deleted first`,
      );
    }
    const topic = epochClaimTopic(this.options.topicPrefix, this.options.cluster, epoch);
    const created = await createSinglePartitionTopic(await this.connectedAdmin(), topic, {
      compact: false,
      durability: this.options.durability,
    });
    if (!created) {
      throw new EpochConflictError(
        `cluster ${this.options.cluster}: epoch ${epoch} was claimed by another role change just before ${claimant} (topic ${topic} exists): nothing was changed. Run \`diffrelay list\` and try again if still wanted`,
      );
    }
    this.options.logger.info({ cluster: this.options.cluster, epoch, claimant, topic }, "epoch claimed");
  }

  /**
   * Publishes a state of its epoch, durable on every in-sync replica when it
   * returns. Refused when the epoch is not claimed or a higher one is: only
   * the holder of the highest claim may write (fencing of stale claimants).
   */
  async publishState(state: ClusterState): Promise<void> {
    const highest = await this.highestClaim();
    if (highest !== state.epoch) {
      throw new EpochConflictError(
        `cluster ${this.options.cluster}: state of epoch ${state.epoch} (phase ${state.phase}) not published: ` +
          (highest < state.epoch
            ? `epoch ${state.epoch} is not claimed (highest claim ${highest})`
            : `epoch ${highest} is claimed: the cluster moved on`),
      );
    }
    await this.send(encodeRecord({ type: "state", state }));
  }

  /** Publishes a renewal of a node's lease (operations/lease); durable on every in-sync replica when it returns. */
  async publishLease(lease: LeaseRecord): Promise<void> {
    await this.send(encodeRecord({ type: "lease", lease }));
  }

  /** Publishes a node's report (last one per node wins). */
  async publishReport(report: NodeReport): Promise<void> {
    await this.send(encodeRecord({ type: "report", report }));
  }

  /** Everything the topic holds now: reads it from its start to its current end. */
  async read(): Promise<ClusterView> {
    let latest: ClusterView | null = null;
    let reached: () => void = () => undefined;
    const done = new Promise<void>((resolve) => {
      reached = resolve;
    });
    const follower = await this.follow((view) => {
      latest = view;
      reached();
    });
    try {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        done,
        new Promise((_, reject) => {
          timer = setTimeout(
            () =>
              reject(
                new Error(`cluster topic ${this.topic} not read to its end within ${READ_TIMEOUT_MS} ms`),
              ),
            READ_TIMEOUT_MS,
          );
        }),
      ]).finally(() => clearTimeout(timer));
    } finally {
      await follower.stop();
    }
    return latest ?? (await this.viewOf(new Map()));
  }

  /**
   * Calls `onChange` with the whole view once the topic has been read to the
   * end it had when following began (an empty topic: at once), then after
   * every batch of records read (src/kafka/topic-reader.ts). A view is never
   * one of a topic read halfway: a state not yet read is not a state that does
   * not exist. A record that does not decode is logged and skipped: it can hold
   * no state. `onFailure` hears of a reader that cannot read on.
   */
  async follow(
    onChange: (view: ClusterView) => void,
    onFailure: (error: Error) => void = () => undefined,
  ): Promise<ClusterFollower> {
    const { kafka, logger } = this.options;
    const records = new Map<string, ReturnType<typeof decodeRecord>>();
    let caughtUp = false;
    const reader = await startTopicReader({
      kafka,
      topic: this.topic,
      purpose: "cluster",
      onRecords: async (batch) => {
        for (const message of batch) {
          const key = message.key?.toString("utf8") ?? "";
          const decoded = message.value ? decodeRecord(key, message.value.toString("utf8")) : null;
          if (decoded instanceof Error) {
            logger.warn(
              { topic: this.topic, offset: message.offset.toString(), key },
              `cluster record skipped: ${decoded.message}`,
            );
            continue;
          }
          if (decoded) records.set(key, decoded);
        }
        if (caughtUp) onChange(await this.viewOf(records));
      },
      onCaughtUp: async () => {
        caughtUp = true;
        onChange(await this.viewOf(records));
      },
      onFailure: (error) => {
        logger.error({ err: error, topic: this.topic }, "the cluster topic cannot be read on");
        onFailure(error);
      },
    });
    return { stop: () => reader.stop() };
  }

  /**
   * Follows the topic until `accept` returns a value for a view, and returns
   * that value; rejects after `timeoutMs` with an error saying what it waited for.
   */
  async waitFor<T>(
    accept: (view: ClusterView) => T | undefined,
    timeoutMs: number,
    waitingFor: string,
  ): Promise<T> {
    let resolveWith: (value: T) => void = () => undefined;
    const found = new Promise<T>((resolve) => {
      resolveWith = resolve;
    });
    let last: ClusterView | null = null;
    const follower = await this.follow((view) => {
      last = view;
      const value = accept(view);
      if (value !== undefined) resolveWith(value);
    });
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([
        found,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => {
            const state = (last as ClusterView | null)?.state;
            reject(
              new Error(
                `cluster ${this.options.cluster}: ${waitingFor} did not happen within ${timeoutMs} ms (cluster at epoch ${state?.epoch ?? "none"}, phase ${state?.phase ?? "none"})`,
              ),
            );
          }, timeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
      await follower.stop();
    }
  }

  async close(): Promise<void> {
    // Every publish was awaited before close: a failed disconnect loses nothing.
    await closeQuietly(this.producer?.disconnect());
    await closeQuietly(this.admin?.disconnect());
    this.producer = null;
    this.admin = null;
  }

  /** The view of these records: the highest published epoch whose claim exists. */
  private async viewOf(records: Map<string, ReturnType<typeof decodeRecord>>): Promise<ClusterView> {
    const claimed = await this.claims();
    const highestClaim = Math.max(-1, ...claimed);
    let state: ClusterState | null = null;
    const states = new Map<number, ClusterState>();
    const reports = new Map<string, NodeReport>();
    const leases = new Map<string, LeaseRecord>();
    for (const record of records.values()) {
      if (record instanceof Error) continue;
      if (record.type === "report") reports.set(record.report.node, record.report);
      else if (record.type === "lease") leases.set(record.lease.holder, record.lease);
      else if (claimed.has(record.state.epoch)) {
        states.set(record.state.epoch, record.state);
        if (state === null || record.state.epoch > state.epoch) state = record.state;
      }
    }
    return { state, states, highestClaim, claims: [...claimed].sort((x, y) => x - y), reports, leases };
  }

  private async send(message: { key: string; value: string }): Promise<void> {
    if (!this.producer) {
      const producer = orderedProducer(this.options.kafka, { idempotent: true });
      await producer.connect();
      this.producer = producer;
    }
    await this.producer.send({ topic: this.topic, acks: -1, messages: [message] });
  }

  private async connectedAdmin(): Promise<Admin> {
    if (!this.admin) {
      const admin = this.options.kafka.admin();
      await admin.connect();
      this.admin = admin;
    }
    return this.admin;
  }
}
