// Fault (issue 12 items 10 and 2): on a private 3-broker KRaft cluster, the data partition's current leader
// is killed with SIGKILL under load, three times, and restarted each time. The topics the capture created must
// have replication factor 3, min.insync.replicas 2 and no unclean leader election, so every acknowledged
// message survives on a new leader; the idempotent producer must not write a retried produce twice. At the
// end both standbys equal the primary (diffrelay verify) with every committed transaction applied once.
// Then the start-up check: an existing topic below the configured durability is reported, or refused with
// exit code 3 under --kafka-require-durability.
import kafkajs from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CaptureOptions, captureArgs, waitForSlotReleased } from "../support/capture-process.js";
import { spawnDiffrelay } from "../support/child-process.js";
import { FaultScenario } from "../support/fault-scenario.js";
import { KafkaClusterFixture } from "../support/kafka-cluster-fixture.js";
import { tail } from "../support/replication-pipeline.js";
import { runSql, uniqueName } from "../support/services.js";

const { ConfigResourceTypes } = kafkajs;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("fault: the data partition's leader is killed on a 3-broker cluster under load", () => {
  let cluster: KafkaClusterFixture | undefined;
  let scenario: FaultScenario | undefined;

  beforeAll(async () => {
    cluster = await KafkaClusterFixture.start(3);
    scenario = await FaultScenario.start({ prefix: "fault_leader", brokers: cluster.brokers });
  }, 420_000);

  afterAll(async () => {
    try {
      await scenario?.close();
    } finally {
      await cluster?.close();
    }
  });

  async function topicDurability(topic: string) {
    const admin = (cluster as KafkaClusterFixture).kafka("fault-leader-admin").admin();
    await admin.connect();
    try {
      const partition = await (cluster as KafkaClusterFixture).partition(topic);
      const { resources } = await admin.describeConfigs({
        includeSynonyms: false,
        resources: [
          {
            type: ConfigResourceTypes.TOPIC,
            name: topic,
            configNames: ["min.insync.replicas", "unclean.leader.election.enable"],
          },
        ],
      });
      const entries = resources[0]?.configEntries ?? [];
      const value = (name: string) => entries.find((e) => e.configName === name)?.configValue;
      return {
        replicationFactor: partition.replicas.length,
        minInsyncReplicas: value("min.insync.replicas"),
        unclean: value("unclean.leader.election.enable"),
      };
    } finally {
      await admin.disconnect();
    }
  }

  it("creates the data and schema topics with RF 3, min.insync.replicas 2, no unclean election", async () => {
    const s = scenario as FaultScenario;
    for (const topic of [s.pipeline.topic, `${s.pipeline.topic}.schemas`]) {
      expect(await topicDurability(topic), topic).toEqual({
        replicationFactor: 3,
        minInsyncReplicas: "2",
        unclean: "false",
      });
    }
  });

  it("loses, doubles and reorders nothing across three leader kills", async () => {
    const s = scenario as FaultScenario;
    const c = cluster as KafkaClusterFixture;
    const faults: { node: number; restartMs: number; recoveryMs: number }[] = [];
    for (let i = 0; i < 3; i++) {
      await c.waitForFullIsr(s.pipeline.topic);
      await s.load.waitForCommits(30);
      await sleep(200 + Math.floor(Math.random() * 500));
      const { node, restartMs } = await c.crashLeader(s.pipeline.topic, 1_000);
      s.tally.add("leader kill -9");
      const recoveryMs = await s.recovered(180_000);
      faults.push({ node, restartMs, recoveryMs });
    }
    s.tally.notes.push(JSON.stringify(faults));
    const capture = s.pipeline.capture.output();
    await s.finish("kafka-leader-kill");
    expect(s.tally.counts).toEqual({ "leader kill -9": 3 });
    // Three different leaders or not, the capture never had to stop: the producer rode out each failover.
    expect(capture).not.toMatch(/out of sequence|OUT_OF_ORDER_SEQUENCE/i);
  }, 900_000);

  it("reports an existing under-replicated topic, and refuses it with --kafka-require-durability (exit 3)", async () => {
    const s = scenario as FaultScenario;
    const c = cluster as KafkaClusterFixture;
    const topic = uniqueName("fault_leader_rf1");
    const admin = c.kafka("fault-leader-admin").admin();
    await admin.connect();
    try {
      await admin.createTopics({
        topics: [topic, `${topic}.schemas`].map((t) => ({
          topic: t,
          numPartitions: 1,
          replicationFactor: 1,
        })),
        waitForLeaders: true,
      });
    } finally {
      await admin.disconnect();
    }
    // Its own slot: this capture must never take the pipeline's position.
    const slot = uniqueName("fault_leader_check");
    const options: CaptureOptions = {
      sourceUrl: s.pipeline.source.url,
      brokers: c.brokers,
      slot,
      publication: s.pipeline.publication,
      topic,
    };
    const expectedReport = new RegExp(
      `topic ${topic} has replication factor 1, min.insync.replicas 1; configured: replication factor 3, ` +
        "min.insync.replicas 2.*kafka-configs.sh .*--entity-name " +
        `${topic} --add-config min.insync.replicas=2,unclean.leader.election.enable=false.*kafka-reassign-partitions.sh`,
    );
    try {
      const refused = spawnDiffrelay([...captureArgs(options), "--kafka-require-durability"]);
      const exit = await refused.exited;
      expect(exit, tail(refused.output())).toEqual({ code: 3, signal: null });
      expect(refused.output()).toMatch(expectedReport);
      expect(refused.output()).toMatch(/kafka\.requireDurability is set/);

      const warned = spawnDiffrelay(captureArgs(options));
      try {
        await warned.waitForOutput(expectedReport, 60_000);
        await warned.waitForOutput(/"capture publishing"/, 60_000);
      } finally {
        warned.kill("SIGKILL");
        await warned.exited;
      }
      expect(warned.output()).toMatch(/"level":"warn"[^\n]*has replication factor 1/);
    } finally {
      await waitForSlotReleased(s.sourceUrl, slot).catch(() => undefined);
      await runSql(
        s.sourceUrl,
        "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1",
        [slot],
      );
    }
  }, 180_000);
});
