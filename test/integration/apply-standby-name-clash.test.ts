// Standby names are chosen per cluster: two clusters (two data topics) on one Kafka may each have a standby,
// or a node, named "a". Their appliers once shared one consumer group (diffrelay-apply-<name>), which gave the
// one partition of the union of their topics to one member: the other stopped (exit 3) or, earlier, idled.
// Each applier's group now names its topic too. Two appliers of one standby name on the SAME topic still
// share a group, and the one left without the partition stops, naming the group, the topic and what to do.
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

  const start = (prefix: string) => {
    const services = testServices();
    return ReplicationPipeline.start({
      sourceServerUrl: services.sourceUrl,
      standbys: [{ name: "clash", serverUrl: services.standbyUrls[0] as string }],
      brokers: services.kafkaBrokers,
      prefix,
      ddl: DDL,
    });
  };

  it("on two topics (two clusters on one Kafka), each applies its own topic", async () => {
    const first = await start("name_clash_a");
    pipelines.push(first);
    const second = await start("name_clash_b");
    pipelines.push(second);
    await runSql(first.source.url, "INSERT INTO notes VALUES (1, 'a')");
    await runSql(second.source.url, "INSERT INTO notes VALUES (1, 'b')");
    for (const [p, body] of [
      [first, "a"],
      [second, "b"],
    ] as const) {
      try {
        await p.waitForCatchUp(["clash"], 60_000);
      } catch (err) {
        const applier = p.standby("clash").applier;
        throw new Error(`the applier of topic ${p.topic} did not apply it: ${tail(applier.output())}`, {
          cause: err,
        });
      }
      const { rows } = await runSql(p.standby("clash").db.url, "SELECT body FROM notes");
      expect(rows).toEqual([{ body }]);
    }
  }, 180_000);

  it("on one topic, the applier left without the partition stops loudly; none idles", async () => {
    const p = await start("name_clash_same");
    pipelines.push(p);
    const appliers = [p.standby("clash").applier, p.spawnApplier("clash")] as const;
    // The group may give the partition to either of them.
    const stopped = await Promise.race(appliers.map((applier) => applier.exited.then(() => applier)));
    const exit = await exitWithin(stopped, 0);
    const output = stopped.output();
    expect(exit.code, tail(output)).toBe(EXIT_SETUP);
    expect(output).toContain(`diffrelay-apply-clash.${p.topic}`);
    expect(output).toMatch(/standby name/);
    // The other goes on applying.
    p.standby("clash").applier = appliers[0] === stopped ? appliers[1] : appliers[0];
    await runSql(p.source.url, "INSERT INTO notes VALUES (2, 'same')");
    await p.waitForCatchUp(["clash"], 60_000);
  }, 180_000);
});
