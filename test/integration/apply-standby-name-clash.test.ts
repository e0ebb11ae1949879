// Two appliers under one standby name share one Kafka consumer group (diffrelay-apply-<name>). With one
// partition, the group gives it to one member only; the other joined, reported itself flowing and
// healthy, and applied nothing, forever. Found running two pipelines whose standbys were both named
// "s1" on one broker. An applier the group leaves without its partition must stop, naming the group,
// the topic and what to do.
import { afterAll, describe, expect, it } from "vitest";
import { exitWithin, ReplicationPipeline, tail } from "../support/replication-pipeline.js";
import { runSql, testServices } from "../support/services.js";

const EXIT_SETUP = 3;
const DDL = "CREATE TABLE notes (id integer PRIMARY KEY, body text);";

describe("apply: two appliers with one standby name", () => {
  const pipelines: ReplicationPipeline[] = [];

  afterAll(async () => {
    for (const p of pipelines) await p.stop();
  });

  it("an applier the group leaves without its partition stops loudly; none idles", async () => {
    const services = testServices();
    const start = (prefix: string) =>
      ReplicationPipeline.start({
        sourceServerUrl: services.sourceUrl,
        standbys: [{ name: "clash", serverUrl: services.standbyUrls[0] as string }],
        brokers: services.kafkaBrokers,
        prefix,
        ddl: DDL,
      });
    pipelines.push(await start("name_clash_a"));
    pipelines.push(await start("name_clash_b"));
    const [first, second] = pipelines as [ReplicationPipeline, ReplicationPipeline];
    await runSql(first.source.url, "INSERT INTO notes VALUES (1, 'a')");
    await runSql(second.source.url, "INSERT INTO notes VALUES (1, 'b')");

    // The group hands out partitions over the union of its members' topics (kafkajs may even give
    // each member the other's partition), so one or both may be left without their own. None may
    // idle: each either stops with the clash named or applies its topic.
    const outcome = async (p: ReplicationPipeline) => {
      const applier = p.standby("clash").applier;
      try {
        await p.waitForCatchUp(["clash"], 60_000);
        return "applied" as const;
      } catch (err) {
        const exit = await exitWithin(applier, 1_000).catch(() => null);
        if (exit === null) throw err;
        const output = applier.output();
        expect(exit.code, tail(output)).toBe(EXIT_SETUP);
        expect(output).toContain("diffrelay-apply-clash");
        expect(output).toContain(p.topic);
        expect(output).toMatch(/standby name/);
        return "stopped" as const;
      }
    };
    const outcomes = await Promise.all([outcome(first), outcome(second)]);
    expect(outcomes).toContain("stopped");
  }, 180_000);
});
