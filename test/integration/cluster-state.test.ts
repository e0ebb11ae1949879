import { afterAll, describe, expect, it } from "vitest";
import { type ClusterState, ClusterStore, EpochConflictError } from "../../operations/cluster/index.js";
import { createKafka } from "../../src/kafka/kafka-client.js";
import { createLogger } from "../../src/observability/logger.js";
import { testServices, uniqueName } from "../support/services.js";

const logger = createLogger("warn", "cluster-state-test");
const stores: ClusterStore[] = [];

function store(cluster: string): ClusterStore {
  const kafka = createKafka(
    {
      brokers: testServices().kafkaBrokers,
      clientId: "cluster-state-test",
      tls: { enabled: false, insecure: false },
      requireDurability: false,
    },
    logger,
  );
  const s = new ClusterStore({ kafka, logger, topicPrefix: "test", cluster, durability: {} });
  stores.push(s);
  return s;
}

function stateOf(cluster: string, epoch: number, primary: string): ClusterState {
  return {
    cluster,
    epoch,
    primary,
    members: [
      { name: "a", apiUrl: "http://127.0.0.1:1" },
      { name: "b", apiUrl: "http://127.0.0.1:2" },
    ],
    phase: "stable",
    topics: { data: `t.e${epoch}`, schemas: `t.e${epoch}.schemas` },
    previous: null,
    writtenBy: "test",
    writtenAt: new Date().toISOString(),
  };
}

afterAll(async () => {
  await Promise.all(stores.map((s) => s.close()));
});

describe("cluster state on a compacted Kafka topic with epoch claims", () => {
  it("of two concurrent claims of one epoch exactly one wins; the loser changes nothing", async () => {
    const cluster = uniqueName("race");
    const [one, two] = [store(cluster), store(cluster)];
    await one.ensureTopic();
    const results = await Promise.allSettled([one.claimEpoch(1, "one"), two.claimEpoch(1, "two")]);
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const lost = results.find((r) => r.status === "rejected") as PromiseRejectedResult;
    expect(lost.reason).toBeInstanceOf(EpochConflictError);
    expect((lost.reason as Error).message).toMatch(/epoch 1 .*claimed.*nothing was changed/);
    expect(await one.highestClaim()).toBe(1);
  });

  it("reads the highest claimed and published epoch, refuses stale and unclaimed publishes", async () => {
    const cluster = uniqueName("state");
    const s = store(cluster);
    await s.ensureTopic();
    expect((await s.read()).state).toBeNull();
    await expect(s.publishState(stateOf(cluster, 0, "a"))).rejects.toThrow(/epoch 0 is not claimed/);

    await s.claimEpoch(0, "bootstrap");
    await s.publishState(stateOf(cluster, 0, "a"));
    await s.claimEpoch(1, "switchover");
    await s.publishState(stateOf(cluster, 1, "b"));
    // The holder of epoch 0 comes back late: its write is refused, and the view stays at epoch 1.
    await expect(s.publishState(stateOf(cluster, 0, "a"))).rejects.toBeInstanceOf(EpochConflictError);
    await expect(s.claimEpoch(1, "late")).rejects.toThrow(/epoch 1 is already claimed/);
    await s.publishReport({
      node: "a",
      epoch: 1,
      role: "standby",
      ready: true,
      fencedEndOffset: "42",
      fencedAt: null,
      writableAt: null,
      sourceId: null,
      lagMs: 3,
      lastError: null,
      at: new Date().toISOString(),
    });

    const view = await store(cluster).read();
    expect(view.state?.epoch).toBe(1);
    expect(view.state?.primary).toBe("b");
    expect(view.highestClaim).toBe(1);
    expect(view.reports.get("a")?.fencedEndOffset).toBe("42");
  });

  it("follow() sees a new epoch as soon as it is published", async () => {
    const cluster = uniqueName("follow");
    const s = store(cluster);
    await s.ensureTopic();
    await s.claimEpoch(0, "bootstrap");
    await s.publishState(stateOf(cluster, 0, "a"));
    const seen: number[] = [];
    const follower = await store(cluster).follow((view) => {
      if (view.state) seen.push(view.state.epoch);
    });
    const waitFor = async (epoch: number) => {
      const deadline = Date.now() + 20_000;
      while (!seen.includes(epoch) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    };
    try {
      await waitFor(0);
      expect(seen).toEqual([0]);
      await s.claimEpoch(1, "switchover");
      await s.publishState(stateOf(cluster, 1, "b"));
      await waitFor(1);
      expect(seen.at(-1)).toBe(1);
    } finally {
      await follower.stop();
    }
  });
});
