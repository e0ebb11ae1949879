// An applier stopped while it is still joining its Kafka consumer group must not leave a member behind:
// seed, promote and rejoin refuse to touch a standby whose applier's group has members, and a restarted
// applier would find the partition taken. Kafka's brokers hold a new group's first join open for
// group.initial.rebalance.delay.ms (3 s by default, as here), so a stop soon after start lands in it.
import type kafkajs from "kafkajs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertApplierStopped } from "../../connectors/postgres-standby/index.js";
import { applierGroupId } from "../../src/kafka/topic-names.js";
import type { DiffrelayProcess } from "../support/child-process.js";
import { KafkaClusterFixture } from "../support/kafka-cluster-fixture.js";
import { ReplicationPipeline, stopProcess } from "../support/replication-pipeline.js";
import { testServices } from "../support/services.js";

const KAFKA_DEFAULT_INITIAL_REBALANCE_DELAY_MS = 3000;

let cluster: KafkaClusterFixture;
let pipeline: ReplicationPipeline;
let admin: kafkajs.Admin;

beforeAll(async () => {
  cluster = await KafkaClusterFixture.start(1, {
    groupInitialRebalanceDelayMs: KAFKA_DEFAULT_INITIAL_REBALANCE_DELAY_MS,
  });
  admin = cluster.kafka("diffrelay-test-join-watch").admin();
  await admin.connect();
  const services = testServices();
  pipeline = await ReplicationPipeline.start({
    sourceServerUrl: services.sourceUrl,
    standbys: [{ name: "s1", serverUrl: services.standbyUrls[0] as string }],
    brokers: cluster.brokers,
    prefix: "stop_joining",
    ddl: "CREATE TABLE items (id integer PRIMARY KEY, v text);",
  });
  await stopProcess(pipeline.standby("s1").applier);
}, 180_000);

afterAll(async () => {
  await pipeline?.stop();
  await admin?.disconnect();
  await cluster?.close();
});

const groupId = () => applierGroupId("s1", pipeline.topic);

async function groupState(): Promise<{ state: string; members: number }> {
  const { groups } = await admin.describeGroups([groupId()]);
  return { state: groups[0]?.state ?? "Dead", members: groups[0]?.members.length ?? 0 };
}

/** Starts the applier and returns once its group's first join is held open by the broker. */
async function applierInItsJoin(): Promise<DiffrelayProcess> {
  // Whatever an earlier case left behind has to expire first.
  await assertApplierStopped(admin, "s1", pipeline.topic, (why) => new Error(why));
  const applier = pipeline.spawnApplier("s1");
  const deadline = Date.now() + 30_000;
  for (;;) {
    const { state } = await groupState();
    if (state === "PreparingRebalance") return applier;
    if (Date.now() > deadline) throw new Error(`the applier's group never began a join (state ${state})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe("an applier stopped while it joins its consumer group", () => {
  it("leaves the group on SIGTERM, so nothing waits on a member that is gone", async () => {
    const applier = await applierInItsJoin();
    const exit = await stopProcess(applier);
    expect(exit.code, applier.output()).toBe(0);
    // A clean stop leaves the group: no member is left for anyone to wait out.
    await new Promise((r) => setTimeout(r, 1000));
    expect(await groupState(), applier.output()).toMatchObject({ members: 0 });
  }, 60_000);

  it("is gone, after a kill -9, within the time seed and promote give a stopped applier", async () => {
    const applier = await applierInItsJoin();
    applier.kill("SIGKILL");
    await applier.exited;
    await assertApplierStopped(admin, "s1", pipeline.topic, (why) => new Error(why));
    // And the same command line starts again: it gets the partition and applies.
    await pipeline.startApplier("s1");
    await pipeline.writeMarker();
    await pipeline.waitForCatchUp(["s1"], 60_000);
  }, 90_000);
});
