// `npm run images -- up|down|test [--keep-engine]`
// up:   starts a private Docker engine (installing Debian's docker.io when missing) and builds the images the
//       container tests run: local bases (debootstrap + this machine's Node), diffrelay:<version>, and stand-ins
//       for the public PostgreSQL and Kafka images; prints the variables that point the tests at them.
// down: removes every container of that engine and stops it.
// test: up, the container tests (`npm run test:containers`), then down: the image beside the local stack and
//       docker-compose.yml on the stand-ins (vitest.containers.config.ts), then TESTCONTAINERS_FILES with
//       DIFFRELAY_TEST_SERVICES=containers on the stand-in images.
import { spawn } from "node:child_process";
import { parseArgs } from "node:util";
import { buildDiffrelayImage } from "./images/diffrelay-image.js";
import { daemonDir, daemonEnv, startDaemon, stopDaemon } from "./images/docker-daemon.js";
import { buildLocalBases } from "./images/local-bases.js";
import { buildServiceImages } from "./images/service-images.js";
import { ensureCommands } from "./stack/debian-packages.js";
import { REPO_ROOT } from "./stack/stack-state.js";

const { positionals, values } = parseArgs({
  allowPositionals: true,
  options: { "keep-engine": { type: "boolean", default: false }, help: { type: "boolean", short: "h" } },
});
const USAGE = "usage: npm run images -- up|down|test [--keep-engine]";
const log = (m: string) => console.error(`[images] ${m}`);

/** Every image, on the engine in `dir`; the settings the tests read to find them. */
async function buildImages(dir: string): Promise<NodeJS.ProcessEnv> {
  // test/containers/compose.test.ts runs docker-compose.yml with it (Debian has no compose v2 plugin).
  await ensureCommands([{ command: "docker-compose", debianPackage: "docker-compose" }], log);
  const bases = await buildLocalBases(log, dir);
  const image = await buildDiffrelayImage(bases, log, dir);
  const services = await buildServiceImages(bases, log, dir);
  return {
    ...daemonEnv(dir),
    DIFFRELAY_IMAGE: image.tag,
    DIFFRELAY_TEST_POSTGRES_IMAGE: services.postgres,
    DIFFRELAY_TEST_KAFKA_IMAGE: services.kafka,
    // What docker-compose.yml runs instead of its public defaults (postgres:17, apache/kafka, diffrelay:local).
    DIFFRELAY_POSTGRES_IMAGE: services.postgres,
    DIFFRELAY_KAFKA_IMAGE: services.apacheKafka,
    // Ryuk, testcontainers' reaper, is one more image to pull; `images down` removes every container instead.
    TESTCONTAINERS_RYUK_DISABLED: "true",
    // Mapped ports on loopback, not the bridge's address: test traffic stays on 127.0.0.1.
    TESTCONTAINERS_HOST_OVERRIDE: "127.0.0.1",
  };
}

/** Suites run a second time on testcontainers: end-to-end smoke, seed/verify, HA switchover. */
const TESTCONTAINERS_FILES = [
  "test/integration/smoke.test.ts",
  "test/integration/seed-exact-settings.test.ts",
  "test/integration/verify-differences.test.ts",
  "test/integration/cluster-switchover.test.ts",
];

function vitest(env: NodeJS.ProcessEnv, args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn("npx", ["vitest", "run", ...args], {
      cwd: REPO_ROOT,
      env,
      stdio: "inherit",
    });
    child.once("error", reject);
    child.once("close", (code) => resolve(code ?? 1));
  });
}

async function test(): Promise<number> {
  const t0 = Date.now();
  const dir = daemonDir();
  const daemon = await startDaemon(log, dir);
  try {
    const env = await buildImages(dir);
    log(`engine and images ready in ${Math.round((Date.now() - t0) / 1000)} s`);
    // The local stack serves the databases and Kafka the image runs beside (host networking).
    const image = await vitest({ ...env, DIFFRELAY_TEST_SERVICES: "stack" }, [
      "--config",
      "vitest.containers.config.ts",
    ]);
    log(`image tests: exit ${image}; now ${TESTCONTAINERS_FILES.length} suites on testcontainers`);
    const containers = await vitest({ ...env, DIFFRELAY_TEST_SERVICES: "containers" }, TESTCONTAINERS_FILES);
    return image || containers;
  } finally {
    // An engine that was running before is left running, as the stack is.
    if (daemon.startedHere && !values["keep-engine"]) await stopDaemon(log, dir);
    log(`container tests took ${Math.round((Date.now() - t0) / 1000)} s in all`);
  }
}

async function main(): Promise<number> {
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  switch (positionals[0]) {
    case "up": {
      const dir = daemonDir();
      await startDaemon(log, dir);
      const env = await buildImages(dir);
      const names = [
        "DOCKER_HOST",
        "DIFFRELAY_IMAGE",
        "DIFFRELAY_TEST_POSTGRES_IMAGE",
        "DIFFRELAY_TEST_KAFKA_IMAGE",
        "DIFFRELAY_POSTGRES_IMAGE",
        "DIFFRELAY_KAFKA_IMAGE",
        "TESTCONTAINERS_RYUK_DISABLED",
        "TESTCONTAINERS_HOST_OVERRIDE",
      ];
      console.log(names.map((n) => `export ${n}='${env[n]}'`).join("\n"));
      return 0;
    }
    case "down":
      await stopDaemon(log);
      return 0;
    case "test":
      return test();
    default:
      console.error(USAGE);
      return 2;
  }
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    console.error(err.message);
    process.exit(1);
  },
);
