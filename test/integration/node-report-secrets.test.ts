import { afterAll, describe, expect, it } from "vitest";
import { TestCluster } from "../support/cluster-nodes.js";
import { expectNoSecret, urlPassword } from "../support/secure-scan.js";
import {
  createTestDatabase,
  runSql,
  type TestDatabase,
  testServices,
  uniqueName,
} from "../support/services.js";
import { deleteTopics, TopicFollower } from "../support/topic-reader.js";

/**
 * A node publishes its database's address in its report on the cluster topic, for the other nodes. pg takes
 * the password from the URL's query string too (`?password=`): Kafka must hold no database secret either way.
 */
const services = testServices();
let database: TestDatabase | undefined;
let cluster: TestCluster | undefined;
const name = uniqueName("secrets").replace(/_/g, "-");
const prefix = uniqueName("secretscl");

afterAll(async () => {
  await cluster?.stopAll();
  await database?.drop().catch(() => undefined);
  await deleteTopics(services.kafkaBrokers, [
    `${prefix}.${name}`,
    `${prefix}.${name}.schemas`,
    `${prefix}.cluster.${name}`,
    `${prefix}.cluster.${name}.claim.e0`,
  ]);
});

describe("a node's report on the cluster topic", () => {
  it("carries its database's host, port and database only, never a password given in the URL's query string", async () => {
    database = await createTestDatabase(services.sourceUrl, "secrets");
    await runSql(database.url, "CREATE TABLE t (id int PRIMARY KEY)");
    const password = urlPassword(database.url);
    const given = new URL(database.url);
    given.password = "";
    given.searchParams.set("password", password);
    given.searchParams.set("connect_timeout", "10");
    cluster = await TestCluster.create({
      name,
      databases: [{ name: "a", url: given.toString() }],
      brokers: services.kafkaBrokers,
      topicPrefix: prefix,
      tables: ["public.t"],
    });
    cluster.start("a", ["--initial-primary", "a"]);
    await cluster.waitFor("a", "/primary", 200);

    const topic = `${prefix}.cluster.${name}`;
    const follower = await TopicFollower.start(services.kafkaBrokers, topic, "schema");
    try {
      await follower.waitForEnd();
      const records = follower.records.map((r) => `${r.key} ${r.value.toString("utf8")}`).join("\n");
      expectNoSecret(`cluster topic ${topic}`, records, [password]);
      const report = follower.records.filter((r) => r.key === "node/a").at(-1);
      expect(report, records).toBeDefined();
      const address = new URL(database.url);
      expect(JSON.parse(report?.value.toString("utf8") as string)).toMatchObject({
        node: "a",
        role: "primary",
        databaseUrl: `postgres://${address.host}${address.pathname}`,
      });
    } finally {
      await follower.stop();
    }
    expectNoSecret("node a's /status", JSON.stringify(await cluster.status("a")), [password]);
  }, 120_000);
});
