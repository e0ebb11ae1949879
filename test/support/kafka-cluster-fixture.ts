// A private 3-broker KRaft cluster for durability tests, in a temp dir, stopped by close(). Set
// DIFFRELAY_TEST_KAFKA_CLUSTER_DIR to reuse a cluster across runs while developing (`npm run stack --
// kafka-cluster up --base-dir=DIR`); a cluster this fixture did not start is left running.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import kafkajs from "kafkajs";
import { kafkaPid } from "../../scripts/stack/kafka-broker.js";
import {
  type KafkaClusterOptions,
  type KafkaClusterState,
  kafkaClusterBrokers,
  readKafkaCluster,
  startClusterNode,
  startKafkaCluster,
  stopClusterNode,
  stopKafkaCluster,
} from "../../scripts/stack/kafka-cluster.js";

const { Kafka, logLevel } = kafkajs;

export interface PartitionState {
  leader: number;
  isr: number[];
  replicas: number[];
}

export class KafkaClusterFixture {
  private constructor(
    readonly state: KafkaClusterState,
    private readonly startedHere: boolean,
    private readonly tempDir: string | null,
  ) {}

  static async start(
    brokers = 3,
    options: Pick<KafkaClusterOptions, "groupInitialRebalanceDelayMs"> = {},
  ): Promise<KafkaClusterFixture> {
    const reuse = process.env.DIFFRELAY_TEST_KAFKA_CLUSTER_DIR;
    const baseDir = reuse ?? mkdtempSync(join(tmpdir(), "diffrelay-kafka-cluster-"));
    const before = readKafkaCluster(baseDir);
    const wasRunning =
      before !== undefined &&
      before.nodes.length === brokers &&
      (before.groupInitialRebalanceDelayMs ?? 0) === (options.groupInitialRebalanceDelayMs ?? 0) &&
      before.nodes.every((n) => kafkaPid(n) !== undefined);
    try {
      const state = await startKafkaCluster({ baseDir, brokers, ...options });
      return new KafkaClusterFixture(state, !wasRunning, reuse ? null : baseDir);
    } catch (err) {
      if (!wasRunning) await stopKafkaCluster({ baseDir, mode: "kill" }).catch(() => undefined);
      throw err;
    }
  }

  get brokers(): string[] {
    return kafkaClusterBrokers(this.state);
  }

  kafka(clientId: string): kafkajs.Kafka {
    return new Kafka({
      clientId,
      brokers: this.brokers,
      logLevel: logLevel.NOTHING,
      retry: { retries: 10, initialRetryTime: 200, maxRetryTime: 3000 },
    });
  }

  /** Leader and in-sync replicas of partition 0, as the controller's metadata says now. */
  async partition(topic: string): Promise<PartitionState> {
    const admin = this.kafka("diffrelay-test-cluster-admin").admin();
    await admin.connect();
    try {
      const meta = await admin.fetchTopicMetadata({ topics: [topic] });
      const p = meta.topics[0]?.partitions.find((x) => x.partitionId === 0);
      if (!p) throw new Error(`topic ${topic} has no partition 0`);
      return { leader: p.leader, isr: [...p.isr].sort(), replicas: [...p.replicas].sort() };
    } finally {
      await admin.disconnect();
    }
  }

  /** Waits until every replica of partition 0 is in sync again (after a restarted node caught up). */
  async waitForFullIsr(topic: string, timeoutMs = 90_000): Promise<PartitionState> {
    const deadline = Date.now() + timeoutMs;
    let last: PartitionState | undefined;
    for (;;) {
      try {
        last = await this.partition(topic);
        if (last.leader >= 0 && last.isr.length === last.replicas.length) return last;
      } catch {
        // metadata can fail while a node is restarting; the deadline bounds it.
      }
      if (Date.now() > deadline) {
        throw new Error(
          `${topic} partition 0 not fully in sync after ${timeoutMs} ms: ${JSON.stringify(last)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }

  /** kill -9 of partition 0's current leader, a pause, a restart; returns which node it was. */
  async crashLeader(topic: string, downMs: number): Promise<{ node: number; restartMs: number }> {
    const { leader } = await this.partition(topic);
    if (leader < 0) throw new Error(`${topic} partition 0 has no leader to crash`);
    const t0 = Date.now();
    try {
      await stopClusterNode(this.state, leader, "kill");
      await new Promise((r) => setTimeout(r, downMs));
    } finally {
      await startClusterNode(this.state, leader);
    }
    return { node: leader, restartMs: Date.now() - t0 };
  }

  async close(): Promise<void> {
    if (!this.startedHere) return;
    await stopKafkaCluster({ baseDir: this.state.baseDir, mode: "kill" });
    if (this.tempDir) rmSync(this.tempDir, { recursive: true, force: true });
  }
}
