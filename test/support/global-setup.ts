import type { StartedPostgreSqlContainer } from "@testcontainers/postgresql";
import type { TestProject } from "vitest/node";
import { ensureCommands, type NeededCommand } from "../../scripts/stack/debian-packages.js";
import { DEFAULT_BASE_DIR, stackEnv, stackStatus, startStack, stopStack } from "../../scripts/stack/index.js";
import { dockerAnswers, obtainImage } from "./docker-engine.js";
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

/**
 * Which services a run uses, named by DIFFRELAY_TEST_SERVICES:
 * - `auto` (the default): `env` when its URLs are set, else `containers` when a Docker engine answers and
 *   can get both images, else `stack`;
 * - `env`: DIFFRELAY_TEST_SOURCE_URL, DIFFRELAY_TEST_STANDBY_URLS and DIFFRELAY_TEST_KAFKA_BROKERS;
 * - `containers`: testcontainers, images from DIFFRELAY_TEST_POSTGRES_IMAGE and DIFFRELAY_TEST_KAFKA_IMAGE;
 * - `stack`: the local stack (PostgreSQL x3 + Kafka from Maven Central), started if not running.
 */
const SERVICES_SETTING = "DIFFRELAY_TEST_SERVICES";
const CHOICES = ["auto", "env", "containers", "stack"] as const;
type ServicesChoice = (typeof CHOICES)[number];

const images = () => ({
  postgres: process.env.DIFFRELAY_TEST_POSTGRES_IMAGE ?? "postgres:17",
  kafka: process.env.DIFFRELAY_TEST_KAFKA_IMAGE ?? "confluentinc/cp-kafka:8.0.0",
});

/** Tools the tests run besides the services: the monitoring tests' Prometheus and promtool. */
const TEST_TOOLS: NeededCommand[] = [
  { command: "prometheus", debianPackage: "prometheus" },
  { command: "promtool", debianPackage: "prometheus" },
];

function servicesChoice(): ServicesChoice {
  const value = process.env[SERVICES_SETTING] ?? "auto";
  if ((CHOICES as readonly string[]).includes(value)) return value as ServicesChoice;
  refuse(`${SERVICES_SETTING}=${value} is not one of ${CHOICES.join(", ")}`);
}

/** Both images, or the first one the engine cannot get and why, in one line. */
async function containerImagesMissing(): Promise<string | undefined> {
  for (const image of Object.values(images())) {
    const got = await obtainImage(image);
    if (!got.ok) return `the Docker engine cannot get image ${image} (${got.reason})`;
  }
  return undefined;
}

/** (2) Containers, when a Docker engine answers and has the images. */
async function fromContainers(): Promise<{ services: TestServices; teardown: Teardown }> {
  const { PostgreSqlContainer } = await import("@testcontainers/postgresql");
  const { KafkaContainer } = await import("@testcontainers/kafka");
  const pg = () =>
    new PostgreSqlContainer(images().postgres)
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
  const kafka = new KafkaContainer(images().kafka)
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

/** A refusal in one line: what was asked, what is missing, what to set instead. */
function refuse(line: string): never {
  const err = new Error(line);
  // No stack: vitest would print it with a code frame, and the line says all there is to say.
  err.stack = `Error: ${line}`;
  throw err;
}

async function chooseServices(): Promise<{ services: TestServices; teardown: Teardown }> {
  const choice = servicesChoice();
  const env = fromEnv();
  if (choice === "env" || (choice === "auto" && env)) {
    if (!env) {
      refuse(`${SERVICES_SETTING}=env needs DIFFRELAY_TEST_SOURCE_URL and DIFFRELAY_TEST_KAFKA_BROKERS`);
    }
    return { services: env, teardown: async () => undefined };
  }
  if (choice === "stack") return fromStack();
  const engine = await dockerAnswers();
  if (choice === "containers") {
    if (!engine)
      refuse(
        `${SERVICES_SETTING}=containers, but no Docker engine answers (DOCKER_HOST or /var/run/docker.sock)`,
      );
    const missing = await containerImagesMissing();
    if (missing) {
      refuse(
        `${SERVICES_SETTING}=containers, but ${missing}: load or build it (DIFFRELAY_TEST_POSTGRES_IMAGE / DIFFRELAY_TEST_KAFKA_IMAGE name local images), or set ${SERVICES_SETTING}=stack`,
      );
    }
    return fromContainers();
  }
  if (engine) {
    const missing = await containerImagesMissing();
    if (!missing) {
      log(
        `Docker engine answers and has the images: using testcontainers (${SERVICES_SETTING}=stack to use the local stack)`,
      );
      return fromContainers();
    }
    log(`${missing}: using the local stack instead (${SERVICES_SETTING}=containers insists on containers)`);
  }
  return fromStack();
}

export default async function setup(project: TestProject): Promise<Teardown> {
  await ensureCommands(TEST_TOOLS, log);
  const chosen = await chooseServices();
  log(
    `${chosen.services.origin}: source ${new URL(chosen.services.sourceUrl).host}, ` +
      `${chosen.services.standbyUrls.length} standbys, kafka ${chosen.services.kafkaBrokers.join(",")}`,
  );
  project.provide("diffrelayServices", chosen.services);
  return chosen.teardown;
}
