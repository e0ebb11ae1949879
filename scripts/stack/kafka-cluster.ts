// A private multi-broker KRaft cluster (default 3 nodes, each broker+controller, a 3-voter quorum) for
// durability tests and for trying replication by hand: `npm run stack -- kafka-cluster up --brokers=3`.
// Its state lives in <baseDir>/kafka-cluster.json, apart from the stack's single broker, so tests can run one
// in a temp dir while the shared stack keeps serving other test files.
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { freePort } from "./free-port.js";
import {
  brokerProperties,
  DEFAULT_KAFKA_VERSION,
  ensureKafkaJars,
  type KafkaStopMode,
  kafkaHost,
  kafkaPid,
  startBroker,
  stopBroker,
  writeLog4jConfig,
} from "./kafka-broker.js";
import { run } from "./processes.js";
import { DEFAULT_BASE_DIR, type KafkaState } from "./stack-state.js";

export interface KafkaClusterNode extends KafkaState {
  nodeId: number;
}

export interface KafkaClusterState {
  baseDir: string;
  version: string;
  clusterId: string;
  groupInitialRebalanceDelayMs: number;
  nodes: KafkaClusterNode[];
}

export interface KafkaClusterOptions {
  baseDir?: string;
  brokers?: number;
  version?: string;
  /** Heap per node; 384 MiB is plenty for test topics and keeps three JVMs light on a 2-core machine. */
  heapMb?: number;
  /** The address every node listens on and advertises; 127.0.0.1 unless set (the fault suite's bridge). */
  host?: string;
  /** See BrokerPropertiesOptions; 0 unless set. */
  groupInitialRebalanceDelayMs?: number;
  log?: (message: string) => void;
}

const clusterFile = (baseDir: string) => join(baseDir, "kafka-cluster.json");
const resolveBase = (baseDir?: string) =>
  resolve(baseDir ?? process.env.DIFFRELAY_STACK_DIR ?? DEFAULT_BASE_DIR);

export function readKafkaCluster(baseDir?: string): KafkaClusterState | undefined {
  const file = clusterFile(resolveBase(baseDir));
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, "utf8")) as KafkaClusterState;
}

function writeKafkaCluster(state: KafkaClusterState): void {
  mkdirSync(state.baseDir, { recursive: true });
  const file = clusterFile(state.baseDir);
  writeFileSync(`${file}.tmp`, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(`${file}.tmp`, file);
}

async function distinctFreePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

/** Writes every node's config and formats its storage with one cluster id and the same static voter set. */
async function initKafkaCluster(
  baseDir: string,
  o: Required<Omit<KafkaClusterOptions, "baseDir" | "host">> & { host?: string },
) {
  const libDir = await ensureKafkaJars(o.version, o.log);
  const root = join(baseDir, "kafka-cluster");
  rmSync(root, { recursive: true, force: true });
  const ports = await distinctFreePorts(o.brokers * 2);
  let clusterId: string;
  // Like Kafka's own Uuid, never start with '-': the storage tool would read it as an option.
  do clusterId = randomBytes(16).toString("base64url");
  while (clusterId.startsWith("-"));
  const nodes: KafkaClusterNode[] = [];
  for (let i = 0; i < o.brokers; i++) {
    const dir = join(root, `node${i + 1}`);
    mkdirSync(join(dir, "data"), { recursive: true });
    nodes.push({
      nodeId: i + 1,
      version: o.version,
      libDir,
      dir,
      port: ports[2 * i] as number,
      controllerPort: ports[2 * i + 1] as number,
      clusterId,
      logFile: join(dir, "kafka.log"),
      heapMb: o.heapMb,
      ...(o.host === undefined ? {} : { host: o.host }),
    });
  }
  const voters = nodes.map((n) => `${n.nodeId}@${kafkaHost(n)}:${n.controllerPort}`).join(",");
  await Promise.all(
    nodes.map(async (n) => {
      writeFileSync(
        join(n.dir, "server.properties"),
        brokerProperties({
          nodeId: n.nodeId,
          port: n.port,
          controllerPort: n.controllerPort,
          dataDir: join(n.dir, "data"),
          quorum: `controller.quorum.voters=${voters}`,
          internalReplicas: Math.min(3, o.brokers),
          host: kafkaHost(n),
          groupInitialRebalanceDelayMs: o.groupInitialRebalanceDelayMs,
        }),
      );
      writeLog4jConfig(n.dir, n.logFile);
      // Static voters: no --standalone / --initial-controllers, every node formatted with the same id.
      await run(
        "java",
        [
          `-Dlog4j2.configurationFile=${join(n.dir, "log4j2.properties")}`,
          "-cp",
          join(libDir, "*"),
          "kafka.tools.StorageTool",
          "format",
          "-t",
          clusterId,
          "-c",
          join(n.dir, "server.properties"),
          "--ignore-formatted",
        ],
        { cwd: n.dir },
      );
    }),
  );
  const state: KafkaClusterState = {
    baseDir,
    version: o.version,
    clusterId,
    groupInitialRebalanceDelayMs: o.groupInitialRebalanceDelayMs,
    nodes,
  };
  writeKafkaCluster(state);
  return state;
}

/**
 * Initialises the cluster if it is missing (or has another size or version) and starts every node that is
 * not running. All nodes start together: none answers before the quorum has a majority.
 */
export async function startKafkaCluster(opts: KafkaClusterOptions = {}): Promise<KafkaClusterState> {
  const baseDir = resolveBase(opts.baseDir);
  const o = {
    brokers: opts.brokers ?? 3,
    version: opts.version ?? process.env.DIFFRELAY_STACK_KAFKA_VERSION ?? DEFAULT_KAFKA_VERSION,
    heapMb: opts.heapMb ?? 384,
    groupInitialRebalanceDelayMs: opts.groupInitialRebalanceDelayMs ?? 0,
    log: opts.log ?? (() => undefined),
    ...(opts.host === undefined ? {} : { host: opts.host }),
  };
  if (o.brokers < 1 || o.brokers > 9) throw new Error(`--brokers must be 1..9, not ${o.brokers}`);
  let state = readKafkaCluster(baseDir);
  if (
    state &&
    (state.nodes.length !== o.brokers ||
      state.version !== o.version ||
      (state.groupInitialRebalanceDelayMs ?? 0) !== o.groupInitialRebalanceDelayMs ||
      kafkaHost(state.nodes[0] as KafkaState) !== (o.host ?? "127.0.0.1"))
  ) {
    await stopKafkaCluster({ baseDir, mode: "kill" });
    state = undefined;
  }
  state ??= await initKafkaCluster(baseDir, o);
  const cluster = state;
  const results = await Promise.allSettled(
    cluster.nodes.map(async (n) => {
      n.pid = await startBroker(n);
    }),
  );
  writeKafkaCluster(cluster);
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed.length) {
    throw new Error(
      `Kafka cluster in ${baseDir} did not start: ${failed.map((f) => String(f.reason)).join("\n")}`,
    );
  }
  return cluster;
}

/** Stops every node this cluster started, by its recorded pid; `purge` deletes its data. */
export async function stopKafkaCluster(
  opts: { baseDir?: string; mode?: KafkaStopMode; purge?: boolean } = {},
): Promise<number> {
  const baseDir = resolveBase(opts.baseDir);
  const state = readKafkaCluster(baseDir);
  if (!state) return 0;
  const running = state.nodes.filter((n) => kafkaPid(n) !== undefined).length;
  const results = await Promise.allSettled(state.nodes.map((n) => stopBroker(n, opts.mode ?? "term")));
  if (opts.purge) {
    rmSync(join(baseDir, "kafka-cluster"), { recursive: true, force: true });
    rmSync(clusterFile(baseDir), { force: true });
  } else {
    writeKafkaCluster(state);
  }
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed.length) throw new Error(failed.map((f) => String(f.reason)).join("\n"));
  return running;
}

export function kafkaClusterBrokers(state: KafkaClusterState): string[] {
  return state.nodes.map((n) => `${kafkaHost(n)}:${n.port}`);
}

function node(state: KafkaClusterState, nodeId: number): KafkaClusterNode {
  const n = state.nodes.find((x) => x.nodeId === nodeId);
  if (!n) throw new Error(`no node ${nodeId} in the Kafka cluster in ${state.baseDir}`);
  return n;
}

/** Fault-test hook: stops one node ("kill" is SIGKILL, a crash). */
export async function stopClusterNode(
  state: KafkaClusterState,
  nodeId: number,
  mode: KafkaStopMode,
): Promise<void> {
  await stopBroker(node(state, nodeId), mode);
  writeKafkaCluster(state);
}

/** Restarts one node; resolves once it answers metadata requests again. */
export async function startClusterNode(state: KafkaClusterState, nodeId: number): Promise<number> {
  const n = node(state, nodeId);
  n.pid = await startBroker(n);
  writeKafkaCluster(state);
  return n.pid;
}

/** Sends SIGSTOP / SIGCONT to one running node: a broker that stops answering without closing sockets. */
export function pauseClusterNode(state: KafkaClusterState, nodeId: number, paused: boolean): void {
  const pid = kafkaPid(node(state, nodeId));
  if (!pid) throw new Error(`node ${nodeId} of the Kafka cluster in ${state.baseDir} is not running`);
  process.kill(pid, paused ? "SIGSTOP" : "SIGCONT");
}
