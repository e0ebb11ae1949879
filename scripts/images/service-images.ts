import { cpSync, mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { DEFAULT_KAFKA_VERSION, ensureKafkaJars } from "../stack/kafka-broker.js";
import { run } from "../stack/processes.js";
import { REPO_ROOT } from "../stack/stack-state.js";
import { daemonEnv } from "./docker-daemon.js";
import type { LocalBases } from "./local-bases.js";

/**
 * Stand-ins for the public images the tests and docker-compose.yml name (postgres, confluentinc/cp-kafka,
 * apache/kafka), built from Debian's packages and Maven Central's jars with the same entry contract, so
 * testcontainers and compose drive them unchanged. `kafka` and `apacheKafka` are one image under two tags:
 * the cp-kafka version whose start-up it follows (testcontainers reads it), and the apache/kafka version of
 * its jars (what the compose file runs).
 */
export interface ServiceImages {
  postgres: string;
  kafka: string;
  apacheKafka: string;
}

export const serviceImageTags = (): ServiceImages => ({
  postgres: "diffrelay-base/postgres:15",
  kafka: "diffrelay-base/cp-kafka:8.0.0",
  apacheKafka: `diffrelay-base/kafka:${DEFAULT_KAFKA_VERSION}`,
});

async function build(tags: string[], context: string, base: string, dir: string): Promise<void> {
  const tagArgs = tags.flatMap((t) => ["--tag", t]);
  await run("docker", ["build", "--network", "host", "--build-arg", `BASE=${base}`, ...tagArgs, context], {
    env: daemonEnv(dir),
    timeoutMs: 20 * 60_000,
  });
}

export async function buildServiceImages(
  bases: LocalBases,
  log: (m: string) => void,
  dir: string,
): Promise<ServiceImages> {
  const tags = serviceImageTags();
  const t0 = Date.now();
  await build([tags.postgres], join(REPO_ROOT, "scripts", "images", "postgres"), bases.debian, dir);
  // The broker's jars join the context: the same ones the local stack runs, resolved once per machine.
  const context = join(dir, "build", "kafka-context");
  rmSync(context, { recursive: true, force: true });
  mkdirSync(context, { recursive: true });
  try {
    cpSync(join(REPO_ROOT, "scripts", "images", "kafka"), context, { recursive: true });
    cpSync(await ensureKafkaJars(DEFAULT_KAFKA_VERSION, log), join(context, "lib"), { recursive: true });
    await build([tags.kafka, tags.apacheKafka], context, bases.debian, dir);
  } finally {
    rmSync(context, { recursive: true, force: true });
  }
  log(
    `${tags.postgres}, ${tags.kafka} and ${tags.apacheKafka} built in ${Math.round((Date.now() - t0) / 1000)} s`,
  );
  return tags;
}
