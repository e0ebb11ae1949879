import type { StartedPostgreSqlContainer } from "@testcontainers/postgresql";
import type { TestProject } from "vitest/node";
import { DEFAULT_BASE_DIR, stackEnv, stackStatus, startStack, stopStack } from "../../scripts/stack/index.js";
import { dockerAnswers } from "./docker-probe.js";
import type { TestServices } from "./services.js";

type Teardown = () => Promise<void>;
const log = (m: string) => console.error(`[test services] ${m}`);
const list = (v: string | undefined) =>
  (v ?? "")
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);

/** (1) Services named by the environment, e.g. a CI job's own databases and broker. */
function fromEnv(): TestServices | undefined {
  const sourceUrl = process.env.DIFFRELAY_TEST_SOURCE_URL;
  const brokers = list(process.env.DIFFRELAY_TEST_KAFKA_BROKERS);
  if (!sourceUrl && !brokers.length) return undefined;
  if (!sourceUrl || !brokers.length) {
    throw new Error("set both DIFFRELAY_TEST_SOURCE_URL and DIFFRELAY_TEST_KAFKA_BROKERS (or neither)");
  }
  return {
    sourceUrl,
    standbyUrls: list(process.env.DIFFRELAY_TEST_STANDBY_URLS),
    kafkaBrokers: brokers,
    origin: "env",
  };
}

/** (2) Containers, when a Docker engine answers. */
async function fromContainers(): Promise<{ services: TestServices; teardown: Teardown }> {
  const { PostgreSqlContainer } = await import("@testcontainers/postgresql");
  const { KafkaContainer } = await import("@testcontainers/kafka");
  const pg = () =>
    new PostgreSqlContainer("postgres:17")
      .withCommand([
        "postgres",
        "-c",
        "wal_level=logical",
        "-c",
        "max_replication_slots=32",
        "-c",
        "max_wal_senders=32",
        "-c",
        "fsync=off",
      ])
      .start();
  const kafka = new KafkaContainer("confluentinc/cp-kafka:8.0.0")
    .withKraft()
    .withEnvironment({ KAFKA_AUTO_CREATE_TOPICS_ENABLE: "false", KAFKA_MESSAGE_MAX_BYTES: "4194304" })
    .start();
  const pgs = [pg(), pg(), pg()];
  // allSettled first so that a failure still lets us stop the containers that did start.
  const results = await Promise.allSettled([...pgs, kafka]);
  const stopAll = async () => {
    await Promise.allSettled(results.map((r) => (r.status === "fulfilled" ? r.value.stop() : undefined)));
  };
  const failed = results.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) {
    await stopAll();
    throw failed.reason;
  }
  const [primary, s1, s2] = (await Promise.all(pgs)) as [
    StartedPostgreSqlContainer,
    ...StartedPostgreSqlContainer[],
  ];
  const broker = await kafka;
  return {
    services: {
      sourceUrl: primary.getConnectionUri(),
      standbyUrls: [s1, s2].filter((c) => c !== undefined).map((c) => c.getConnectionUri()),
      kafkaBrokers: [`${broker.getHost()}:${broker.getMappedPort(9093)}`],
      origin: "testcontainers",
    },
    teardown: stopAll,
  };
}

/** (3) The local stack. A stack a developer already had running is reused and left running. */
async function fromStack(): Promise<{ services: TestServices; teardown: Teardown }> {
  const baseDir = process.env.DIFFRELAY_STACK_DIR ?? DEFAULT_BASE_DIR;
  const wasUp = stackStatus({ baseDir }).some((s) => s.running);
  const t0 = Date.now();
  try {
    await startStack({ baseDir, log });
    log(`local stack ready in ${Date.now() - t0} ms (${wasUp ? "reused" : "started for this run"})`);
  } catch (err) {
    // A half-started stack must not outlive a failed setup.
    if (!wasUp) await stopStack({ baseDir }).catch(() => undefined);
    throw err;
  }
  const env = stackEnv({ baseDir });
  const services: TestServices = {
    sourceUrl: env.DIFFRELAY_SOURCE_URL as string,
    standbyUrls: [env.DIFFRELAY_STANDBY1_URL, env.DIFFRELAY_STANDBY2_URL].filter((u): u is string => !!u),
    kafkaBrokers: list(env.DIFFRELAY_KAFKA_BROKERS),
    origin: "stack",
    stack: { baseDir, startedByTests: !wasUp },
  };
  const teardown = async () => {
    if (wasUp) return;
    const stopped = await stopStack({ baseDir });
    log(`local stack stopped (${stopped.join(", ")})`);
  };
  return { services, teardown };
}

export default async function setup(project: TestProject): Promise<Teardown> {
  let chosen: { services: TestServices; teardown: Teardown };
  const env = fromEnv();
  if (env) {
    chosen = { services: env, teardown: async () => undefined };
  } else if (await dockerAnswers()) {
    log("Docker engine answers: using testcontainers");
    chosen = await fromContainers();
  } else {
    chosen = await fromStack();
  }
  log(
    `${chosen.services.origin}: source ${new URL(chosen.services.sourceUrl).host}, ` +
      `${chosen.services.standbyUrls.length} standbys, kafka ${chosen.services.kafkaBrokers.join(",")}`,
  );
  project.provide("diffrelayServices", chosen.services);
  return chosen.teardown;
}
