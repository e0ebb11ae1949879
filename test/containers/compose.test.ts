// docker-compose.yml, run as users run it: three database servers, Kafka and one diffrelay node per server on
// compose's own bridge network (ports published on 127.0.0.1 only, free ones picked here), the demo's flow
// inside it (seed the standbys from the first primary's snapshot, switch over, verify), a crashed node container
// brought back by `restart: unless-stopped` in its role (one stopped by `docker kill` by `up -d`), and `down -v`
// leaving nothing of the project.
// Images: DIFFRELAY_IMAGE, DIFFRELAY_POSTGRES_IMAGE, DIFFRELAY_KAFKA_IMAGE (`npm run images -- up` builds
// stand-ins for the public postgres and apache/kafka images).
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../scripts/stack/free-port.js";
import { docker, requireImage } from "../support/image-process.js";
import { runSql } from "../support/services.js";
import { compareTables, describeDifferences } from "../support/table-compare.js";

const PROJECT = `diffrelay-compose-${randomBytes(3).toString("hex")}`;
const CLUSTER = "app";
const NODES = ["node-primary", "node-standby1", "node-standby2"] as const;
type NodeName = (typeof NODES)[number];
/** Each node's database server: its compose service. */
const SERVER: Record<NodeName, string> = {
  "node-primary": "primary",
  "node-standby1": "standby1",
  "node-standby2": "standby2",
};
const TABLES = ["public.accounts"];
const UP_MS = 240_000;

interface Ports {
  server: Record<NodeName, number>;
  node: Record<NodeName, number>;
  kafka: number;
}
let ports: Ports;

function composeEnv(): NodeJS.ProcessEnv {
  return {
    ...process.env,
    DIFFRELAY_PRIMARY_PORT: String(ports.server["node-primary"]),
    DIFFRELAY_STANDBY1_PORT: String(ports.server["node-standby1"]),
    DIFFRELAY_STANDBY2_PORT: String(ports.server["node-standby2"]),
    DIFFRELAY_KAFKA_PORT: String(ports.kafka),
    DIFFRELAY_NODE_PRIMARY_PORT: String(ports.node["node-primary"]),
    DIFFRELAY_NODE_STANDBY1_PORT: String(ports.node["node-standby1"]),
    DIFFRELAY_NODE_STANDBY2_PORT: String(ports.node["node-standby2"]),
    // The crash test below wants the restarted primary's node back in its role: an election must not beat
    // the engine's restart of its container on this loaded machine (automatic failover has its own tests).
    DIFFRELAY_LEASE_TTL_MS: "60000",
  };
}

/** `docker-compose -p PROJECT ARGS` (Debian's compose): its exit code and output. */
function compose(args: string[], timeoutMs = UP_MS): { code: number | null; stdout: string; output: string } {
  const r = spawnSync("nice", ["-n", "19", "docker-compose", "--ansi", "never", "-p", PROJECT, ...args], {
    encoding: "utf8",
    env: composeEnv(),
    timeout: timeoutMs,
  });
  return { code: r.status, stdout: r.stdout, output: `${r.stdout}${r.stderr}` };
}

/** Its stdout; a failure throws with everything it printed. */
function composeOk(args: string[], timeoutMs = UP_MS): string {
  const r = compose(args, timeoutMs);
  if (r.code !== 0) throw new Error(`docker-compose ${args.join(" ")} exited ${r.code}:\n${r.output}`);
  return r.stdout;
}

/** `diffrelay ARGS` inside a node's running container (on the compose network, beside its peers). */
function diffrelayIn(node: NodeName, args: string[], env: Record<string, string> = {}) {
  const envArgs = Object.entries(env).flatMap(([k, v]) => ["-e", `${k}=${v}`]);
  return compose([
    "exec",
    "-T",
    ...envArgs,
    node,
    "node",
    "bin/diffrelay.js",
    ...args,
    "--log-level",
    "warn",
  ]);
}

const inNetwork = (node: NodeName) => `postgres://app:app@${SERVER[node]}:5432/app`;
const fromHost = (node: NodeName) => `postgres://app:app@127.0.0.1:${ports.server[node]}/app`;
/** Standby sessions are read-only for clients (the node sets it); verify needs a writable one. */
const writable = (url: string) =>
  `${url}?options=${encodeURIComponent("-c default_transaction_read_only=off")}`;

async function httpStatus(node: NodeName, path: string): Promise<number> {
  try {
    const r = await fetch(`http://127.0.0.1:${ports.node[node]}${path}`, {
      signal: AbortSignal.timeout(2_000),
    });
    await r.body?.cancel();
    return r.status;
  } catch {
    return 0;
  }
}

async function nodeStatus(node: NodeName): Promise<{ nodeRole?: string; service?: { topic?: string } }> {
  const r = await fetch(`http://127.0.0.1:${ports.node[node]}/status`, {
    signal: AbortSignal.timeout(2_000),
  });
  return (await r.json()) as { nodeRole?: string; service?: { topic?: string } };
}

async function waitForRole(node: NodeName, role: "primary" | "replica", timeout = UP_MS): Promise<void> {
  await expect
    .poll(() => httpStatus(node, `/${role}`), { timeout, interval: 500, message: `${node} answers /${role}` })
    .toBe(200);
}

/** A marker row written on the primary, waited for on every standby: then they hold everything before it. */
async function waitForCatchUp(primary: NodeName, standbys: NodeName[]): Promise<void> {
  const id = 1_000_000 + Math.floor(Math.random() * 1_000_000);
  await runSql(fromHost(primary), `INSERT INTO accounts VALUES (${id}, 0, 'marker')`);
  for (const s of standbys) {
    await expect
      .poll(async () => (await runSql(fromHost(s), `SELECT 1 FROM accounts WHERE id = ${id}`)).rows.length, {
        timeout: 60_000,
        interval: 300,
        message: `${s} receives the marker row ${id} written on ${primary}`,
      })
      .toBe(1);
  }
}

/** The data topic a primary captures to, from its /status once its capture has started. */
async function captureTopic(node: NodeName): Promise<string> {
  await expect
    .poll(async () => (await nodeStatus(node)).service?.topic, {
      timeout: 60_000,
      interval: 300,
      message: `${node}'s /status names its capture topic`,
    })
    .toBeTruthy();
  return (await nodeStatus(node)).service?.topic as string;
}

async function expectEqual(primary: NodeName, standby: NodeName): Promise<void> {
  const topic = await captureTopic(primary);
  const verified = diffrelayIn(primary, ["verify"], {
    DIFFRELAY_TOPIC: topic,
    DIFFRELAY_SOURCE_URL: inNetwork(primary),
    DIFFRELAY_STANDBY_NAME: standby,
    DIFFRELAY_STANDBY_URL: writable(inNetwork(standby)),
  });
  expect(verified.code, `diffrelay verify ${standby} against ${primary}:\n${verified.output}`).toBe(0);
  const comparison = await compareTables(fromHost(primary), fromHost(standby), TABLES);
  expect(describeDifferences(comparison)).toEqual([]);
}

/** What the engine still has of this project: containers, networks, volumes. */
function leftovers(): string[] {
  const label = `label=com.docker.compose.project=${PROJECT}`;
  return [
    ...docker(["ps", "-a", "--filter", label, "--format", "container {{.Names}}"]).split("\n"),
    ...docker(["network", "ls", "--filter", label, "--format", "network {{.Name}}"]).split("\n"),
    ...docker(["volume", "ls", "--filter", label, "--format", "volume {{.Name}}"]).split("\n"),
  ].filter(Boolean);
}

describe("docker-compose.yml", () => {
  beforeAll(async () => {
    await requireImage();
    for (const name of ["DIFFRELAY_POSTGRES_IMAGE", "DIFFRELAY_KAFKA_IMAGE"]) {
      if (!process.env[name])
        throw new Error(`${name} is not set: run these tests with \`npm run test:containers\``);
    }
    if (spawnSync("docker-compose", ["version"]).status !== 0)
      throw new Error(
        "docker-compose is missing: `npm run test:containers` installs Debian's docker-compose",
      );
    const taken = new Set<number>();
    const pick = async () => {
      let p = await freePort();
      while (taken.has(p)) p = await freePort();
      taken.add(p);
      return p;
    };
    const three = async () => ({
      "node-primary": await pick(),
      "node-standby1": await pick(),
      "node-standby2": await pick(),
    });
    ports = { server: await three(), node: await three(), kafka: await pick() };
  }, UP_MS);

  afterAll(() => {
    // Whatever failed, nothing of the project stays on the engine.
    if (ports && leftovers().length) compose(["down", "-v", "--remove-orphans", "--timeout", "10"]);
  });

  it(
    "comes up: the first primary, then standbys seeded from its snapshot",
    async () => {
      composeOk(["up", "-d", "primary", "standby1", "standby2", "kafka", "node-primary"]);
      await waitForRole("node-primary", "primary");
      // The schema is the application's, on every server (the image has no pg_dump for `seed --create-schema`).
      for (const node of NODES) {
        await runSql(
          fromHost(node),
          "CREATE TABLE accounts (id integer PRIMARY KEY, balance bigint NOT NULL, owner text)",
        );
      }
      await runSql(
        fromHost("node-primary"),
        "INSERT INTO accounts SELECT g, g * 10, 'owner ' || g FROM generate_series(1, 1000) g",
      );
      // Its capture's session is up, so its slot exists: seed refuses without it (as in the demo).
      await expect.poll(() => httpStatus("node-primary", "/healthz"), { timeout: 60_000 }).toBe(200);
      const topic = await captureTopic("node-primary");
      expect(topic).toBe(`diffrelay.${CLUSTER}`);
      // The compose file's own instructions: seed each standby before its node starts.
      for (const standby of ["node-standby1", "node-standby2"] as const) {
        const seeded = diffrelayIn("node-primary", [
          "seed",
          "--source-url",
          inNetwork("node-primary"),
          "--standby-url",
          inNetwork(standby),
          "--standby-name",
          standby,
          "--topic",
          topic,
        ]);
        expect(seeded.code, `seed ${standby}:\n${seeded.output}`).toBe(0);
      }
      composeOk(["up", "-d"]);
      for (const standby of ["node-standby1", "node-standby2"] as const)
        await waitForRole(standby, "replica");
      await runSql(fromHost("node-primary"), "UPDATE accounts SET balance = balance + 1 WHERE id % 3 = 0");
      await waitForCatchUp("node-primary", ["node-standby1", "node-standby2"]);
      await expectEqual("node-primary", "node-standby1");
    },
    2 * UP_MS,
  );

  it(
    "switches over to node-standby1 (diffrelay switchover inside a node container), all three equal",
    async () => {
      const switched = diffrelayIn("node-primary", [
        "switchover",
        "--cluster",
        CLUSTER,
        "--to",
        "node-standby1",
      ]);
      expect(switched.code, `switchover:\n${switched.output}`).toBe(0);
      await waitForRole("node-standby1", "primary", 60_000);
      await waitForRole("node-primary", "replica", 60_000);
      await runSql(fromHost("node-standby1"), "DELETE FROM accounts WHERE id % 7 = 0");
      await waitForCatchUp("node-standby1", ["node-primary", "node-standby2"]);
      await expectEqual("node-standby1", "node-primary");
      await expectEqual("node-standby1", "node-standby2");
    },
    UP_MS,
  );

  it(
    "restart: unless-stopped brings a crashed node container back in its role",
    async () => {
      // A crash (the process killed, as the OOM killer does): the engine restarts the container by its policy.
      for (const [node, role] of [
        ["node-standby1", "primary"],
        ["node-standby2", "replica"],
      ] as const) {
        const id = composeOk(["ps", "-q", node]).trim();
        const restarts = () => Number(docker(["inspect", "-f", "{{.RestartCount}}", id]).trim());
        const before = restarts();
        process.kill(Number(docker(["inspect", "-f", "{{.State.Pid}}", id]).trim()), "SIGKILL");
        await expect
          .poll(restarts, {
            timeout: 60_000,
            interval: 500,
            message: `the engine restarts ${node}'s container`,
          })
          .toBeGreaterThan(before);
        await waitForRole(node, role, 120_000);
        expect((await nodeStatus(node)).nodeRole).toBe(role === "replica" ? "standby" : "primary");
      }
      await runSql(
        fromHost("node-standby1"),
        "UPDATE accounts SET owner = owner || ' after crash' WHERE id < 50",
      );
      await waitForCatchUp("node-standby1", ["node-primary", "node-standby2"]);
      await expectEqual("node-standby1", "node-standby2");
    },
    UP_MS,
  );

  it(
    "a node container stopped with docker kill stays down (Docker's rule), and `up -d` brings it back in its role",
    async () => {
      const id = composeOk(["ps", "-q", "node-primary"]).trim();
      docker(["kill", id]);
      await expect
        .poll(() => docker(["inspect", "-f", "{{.State.Status}}", id]).trim(), { timeout: 30_000 })
        .toBe("exited");
      // A user's kill counts as a stop: unless-stopped leaves it stopped (checked over a few seconds).
      await new Promise((r) => setTimeout(r, 5_000));
      expect(docker(["inspect", "-f", "{{.State.Status}}", id]).trim()).toBe("exited");
      composeOk(["up", "-d"]);
      await waitForRole("node-primary", "replica", 120_000);
      await runSql(fromHost("node-standby1"), "DELETE FROM accounts WHERE id % 11 = 0");
      await waitForCatchUp("node-standby1", ["node-primary", "node-standby2"]);
      await expectEqual("node-standby1", "node-primary");
    },
    UP_MS,
  );

  it(
    "down -v leaves no container, network or volume of the project",
    () => {
      composeOk(["down", "-v", "--remove-orphans", "--timeout", "10"]);
      expect(leftovers()).toEqual([]);
    },
    UP_MS,
  );
});
