import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { Kafka, type KafkaConfig, logLevel } from "kafkajs";
import { ensureCommands, type NeededCommand } from "./debian-packages.js";
import { freePort, portIsFree } from "./free-port.js";
import { awaitReaped, isAlive, PointlessWait, run, tail, terminate, waitUntil } from "./processes.js";
import { CACHE_DIR, type KafkaState, REPO_ROOT } from "./stack-state.js";

export const DEFAULT_KAFKA_VERSION = "4.1.1";
export type KafkaStopMode = "term" | "kill";

const JAVA: NeededCommand = { command: "java", debianPackage: "openjdk-17-jre-headless" };

/**
 * Resolves the broker's jars from Maven Central once per machine into .cache/kafka-<ver>/lib
 * (Maven's ~/.m2 also caches them). Written to a temp dir and renamed so a half-done copy is never used.
 */
export async function ensureKafkaJars(version: string, log: (m: string) => void): Promise<string> {
  const libDir = join(CACHE_DIR, `kafka-${version}`, "lib");
  // Every broker start comes through here, so this is where a fresh machine gets its Java (Debian
  // bookworm's is 17, what Kafka 4 needs) and, for the first resolution only, Maven.
  const cached = existsSync(join(libDir, ".complete"));
  await ensureCommands([JAVA, ...(cached ? [] : [{ command: "mvn", debianPackage: "maven" }])], log);
  if (cached) return libDir;
  log(`resolving Kafka ${version} jars with Maven into ${libDir}`);
  const partial = `${libDir}.partial-${process.pid}`;
  rmSync(partial, { recursive: true, force: true });
  await run(
    "mvn",
    [
      "-q",
      "-B",
      "-f",
      join(REPO_ROOT, "scripts", "stack", "kafka-pom.xml"),
      `-Dkafka.version=${version}`,
      "dependency:copy-dependencies",
      "-DincludeScope=runtime",
      `-DoutputDirectory=${partial}`,
    ],
    { timeoutMs: 15 * 60_000 },
  );
  writeFileSync(join(partial, ".complete"), `${new Date().toISOString()}\n`);
  rmSync(libDir, { recursive: true, force: true });
  renameSync(partial, libDir);
  return libDir;
}

/** The broker's classpath wildcard; java expands it itself, so no shell is involved. */
const classpath = (k: KafkaState) => join(k.libDir, "*");

/** The broker logs to a file of the stack's, not to the console. */
export function writeLog4jConfig(dir: string, logFile: string): void {
  writeFileSync(
    join(dir, "log4j2.properties"),
    [
      "status = warn",
      "appender.file.type = File",
      "appender.file.name = FILE",
      `appender.file.fileName = ${logFile}`,
      "appender.file.layout.type = PatternLayout",
      "appender.file.layout.pattern = [%d] %p %m (%c)%n",
      "rootLogger.level = INFO",
      "rootLogger.appenderRef.file.ref = FILE",
      "",
    ].join("\n"),
  );
}

export interface BrokerPropertiesOptions {
  nodeId: number;
  port: number;
  controllerPort: number;
  dataDir: string;
  /** The quorum line: bootstrap servers for one standalone node, static voters for a cluster. */
  quorum: string;
  /** Replication factor of Kafka's own topics (offsets, transactions, share state): at most the node count. */
  internalReplicas: number;
  /** The address it listens on and advertises; 127.0.0.1 unless set (the fault suite's bridge address). */
  host?: string;
  /**
   * How long a new consumer group's first join waits for more members. 0 unless set: the stack forms groups at
   * once; Kafka's own default is 3000, which tests of a join in progress set to hold the join open.
   */
  groupInitialRebalanceDelayMs?: number;
}

/** server.properties of one combined broker+controller node of the dev/test stack. */
export function brokerProperties(o: BrokerPropertiesOptions): string {
  const internalMinIsr = Math.max(1, o.internalReplicas - 1);
  const host = o.host ?? "127.0.0.1";
  return [
    "# KRaft combined mode: a dev/test node for diffrelay",
    "process.roles=broker,controller",
    `node.id=${o.nodeId}`,
    o.quorum,
    `listeners=PLAINTEXT://${host}:${o.port},CONTROLLER://${host}:${o.controllerPort}`,
    `advertised.listeners=PLAINTEXT://${host}:${o.port}`,
    "controller.listener.names=CONTROLLER",
    "inter.broker.listener.name=PLAINTEXT",
    "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
    `log.dirs=${o.dataDir}`,
    // diffrelay creates its topics explicitly; an auto-created topic would hide a missing create.
    "auto.create.topics.enable=false",
    "num.partitions=1",
    // Left at 1 even on a cluster: a topic created without an explicit replication factor shows up as RF 1.
    "default.replication.factor=1",
    `offsets.topic.replication.factor=${o.internalReplicas}`,
    // Fewer offsets partitions than the default 50 so the first consumer group forms quickly on 2 cores.
    "offsets.topic.num.partitions=8",
    `transaction.state.log.replication.factor=${o.internalReplicas}`,
    `transaction.state.log.min.isr=${internalMinIsr}`,
    `share.coordinator.state.topic.replication.factor=${o.internalReplicas}`,
    `share.coordinator.state.topic.min.isr=${internalMinIsr}`,
    `group.initial.rebalance.delay.ms=${o.groupInitialRebalanceDelayMs ?? 0}`,
    // After a kill -9 the restarted broker cannot re-register until its old session expires (default 9 s);
    // fault tests crash it on purpose, so a shorter session keeps restarts quick (and, on a cluster, fences a
    // dead leader sooner).
    "broker.heartbeat.interval.ms=1000",
    "broker.session.timeout.ms=4000",
    // Whole source transactions can be large frames.
    "message.max.bytes=4194304",
    "replica.fetch.max.bytes=4194304",
    "",
  ].join("\n");
}

export async function initKafka(
  baseDir: string,
  version: string,
  log: (m: string) => void,
): Promise<KafkaState> {
  const libDir = await ensureKafkaJars(version, log);
  const dir = join(baseDir, "kafka");
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, "data"), { recursive: true });
  const port = await freePort();
  let controllerPort = await freePort();
  while (controllerPort === port) controllerPort = await freePort();
  const logFile = join(baseDir, "logs", "kafka.log");
  mkdirSync(join(baseDir, "logs"), { recursive: true });
  writeFileSync(
    join(dir, "server.properties"),
    brokerProperties({
      nodeId: 1,
      port,
      controllerPort,
      dataDir: join(dir, "data"),
      quorum: `controller.quorum.bootstrap.servers=127.0.0.1:${controllerPort}`,
      internalReplicas: 1,
    }),
  );
  writeLog4jConfig(dir, logFile);
  const k: KafkaState = {
    version,
    libDir,
    dir,
    port,
    controllerPort,
    clusterId: "",
    logFile,
  };
  // A KRaft cluster id is 16 random bytes in URL-safe base64 without padding (what `random-uuid` prints).
  // Like Kafka's own Uuid, never start with '-': the tool's argument parser would read it as an option.
  do {
    k.clusterId = randomBytes(16).toString("base64url");
  } while (k.clusterId.startsWith("-"));
  await run(
    "java",
    [
      `-Dlog4j2.configurationFile=${join(dir, "log4j2.properties")}`,
      "-cp",
      classpath(k),
      "kafka.tools.StorageTool",
      "format",
      "--standalone",
      "-t",
      k.clusterId,
      "-c",
      join(dir, "server.properties"),
      "--ignore-formatted",
    ],
    { cwd: dir },
  );
  return k;
}

/** The address a broker listens on and advertises. */
export const kafkaHost = (k: KafkaState): string => k.host ?? "127.0.0.1";

/** The recorded pid is ours only while it is alive and still runs this stack's broker config. */
export function kafkaPid(k: KafkaState): number | undefined {
  if (!k.pid || !isAlive(k.pid)) return undefined;
  try {
    const cmdline = readFileSync(`/proc/${k.pid}/cmdline`, "utf8");
    return cmdline.includes(join(k.dir, "server.properties")) ? k.pid : undefined;
  } catch {
    return undefined;
  }
}

/** Metadata through kafkajs, the client diffrelay uses, so "ready" means ready for our code. */
export async function kafkaAnswers(k: KafkaState): Promise<boolean> {
  return kafkaListsTopics({ clientId: "diffrelay-stack-probe", brokers: [`${kafkaHost(k)}:${k.port}`] });
}

/** One probe attempt with the given client settings (TLS, SASL…): lists topics, or throws. */
export async function kafkaListsTopics(config: KafkaConfig): Promise<boolean> {
  const admin = new Kafka({
    logLevel: logLevel.NOTHING,
    connectionTimeout: 2_000,
    ...config,
    retry: { retries: 0 },
  }).admin();
  try {
    await admin.connect();
    await admin.listTopics();
    return true;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** Starts the broker if it is not running (idempotent); updates k.pid. */
export async function startBroker(k: KafkaState): Promise<number> {
  let pid = kafkaPid(k);
  if (!pid) {
    for (const p of [k.port, k.controllerPort]) {
      // Bounded wait: a broker killed a moment ago may still be releasing its sockets.
      await waitUntil(`port ${p} to be free for Kafka (is another process using it?)`, 15_000, () =>
        portIsFree(p, kafkaHost(k)),
      );
    }
    const out = openSync(join(k.dir, "kafka.out"), "a");
    const child = spawn(
      "java",
      [
        `-Xmx${k.heapMb ?? 512}m`,
        "-Xms128m",
        "-XX:+UseG1GC",
        "-Djava.awt.headless=true",
        `-Dlog4j2.configurationFile=${join(k.dir, "log4j2.properties")}`,
        "-cp",
        classpath(k),
        "kafka.Kafka",
        join(k.dir, "server.properties"),
      ],
      // Detached in its own process group so it outlives `npm run stack -- up`.
      { cwd: k.dir, detached: true, stdio: ["ignore", out, out] },
    );
    closeSync(out);
    child.unref();
    if (!child.pid) throw new Error("java did not start for Kafka");
    pid = child.pid;
    k.pid = pid;
  }
  const started = pid;
  await waitUntil(
    `Kafka on ${kafkaHost(k)}:${k.port}`,
    90_000,
    async () => {
      if (!isAlive(started)) throw new PointlessWait(`Kafka (pid ${started}) exited`);
      return kafkaAnswers(k);
    },
    () => `${tail(join(k.dir, "kafka.out"), 15)}\n${tail(k.logFile)}`,
  );
  return pid;
}

/** SIGTERM gives a controlled shutdown (30 s grace, then SIGKILL); "kill" is an immediate crash. */
export async function stopBroker(k: KafkaState, mode: KafkaStopMode = "term"): Promise<void> {
  const pid = kafkaPid(k);
  if (pid) {
    if (mode === "kill") {
      process.kill(pid, "SIGKILL");
      await waitUntil(`Kafka pid ${pid} to exit`, 10_000, () => !isAlive(pid));
    } else {
      await terminate(pid, 30_000);
    }
    await awaitReaped(pid);
  }
  k.pid = undefined;
}
