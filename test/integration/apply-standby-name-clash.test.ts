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

  it("the one the group leaves without its partition stops loudly", async () => {
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

    // One of the two keeps its partition; the other must exit rather than idle as "flowing".
    const exits = await Promise.race([
      exitWithin(first.standby("clash").applier, 60_000).then((e) => ({ loser: first, e })),
      exitWithin(second.standby("clash").applier, 60_000).then((e) => ({ loser: second, e })),
    ]);
    const output = exits.loser.standby("clash").applier.output();
    expect(exits.e.code, tail(output)).toBe(EXIT_SETUP);
    expect(output).toContain("diffrelay-apply-clash");
    expect(output).toContain(exits.loser.topic);
    expect(output).toMatch(/standby name/);

    const winner = exits.loser === first ? second : first;
    await winner.waitForCatchUp(["clash"], 60_000);
  }, 180_000);
});
