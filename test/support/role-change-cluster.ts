// A 3-node HA cluster for role-change fault tests: each `diffrelay node` beside a private PostgreSQL server
// of its own (zero-loss mode sets synchronous_standby_names server-wide, and a failover kills a server), all
// with synchronous_commit = on (as in production) and one shared password (a rejoining node reaches the new
// primary's database with its own). Every node keeps one command line for its whole life: a restart runs it
// again, unchanged. The role changes are the operator's commands, run as real processes.
import { Kafka, logLevel } from "kafkajs";
import { type DiffrelayProcess, type ExitInfo, spawnDiffrelay } from "./child-process.js";
import { TestCluster } from "./cluster-nodes.js";
import { type PrivatePostgres, startPrivatePostgres } from "./private-postgres.js";
import { exitWithin, stopProcess, tail } from "./replication-pipeline.js";
import { runSql, testServices, uniqueName } from "./services.js";

export const NODE_NAMES = ["a", "b", "c"] as const;

export interface CommandRun {
  code: number | null;
  output: string;
}

// biome-ignore lint/suspicious/noExplicitAny: /status is the node's JSON document, read field by field.
export type NodeStatus = any;

export class RoleChangeCluster {
  /** How the current process of each node exited, once it has. */
  private readonly exits = new Map<string, ExitInfo>();

  private constructor(
    readonly cluster: TestCluster,
    readonly servers: Map<string, PrivatePostgres>,
    /** Each node's own flags, the same at every start. */
    readonly commandLines: Map<string, string[]>,
    private readonly brokers: string[],
  ) {}

  /**
   * Starts the servers, creates `ddl` on each, bootstraps node a as the first primary, seeds b and c from
   * it and starts their nodes.
   */
  static async start(options: {
    label: string;
    zeroLoss: boolean;
    ddl: string;
    tables: string[];
    /** The nodes elect a new primary by themselves when the lease lapses; off: only the commands change roles. */
    automaticFailover?: boolean;
    /** Each node's flags beyond the mode's (the same at every start). */
    nodeFlags?: string[];
    /** Where the servers and nodes run; a private server on this machine each unless given. */
    hosts?: {
      brokers: string[];
      server(name: string, password: string): Promise<PrivatePostgres>;
      place(name: string): { host: string; netns: string };
    };
  }): Promise<RoleChangeCluster> {
    const brokers = options.hosts?.brokers ?? testServices().kafkaBrokers;
    const password = uniqueName("pw");
    const servers = new Map<string, PrivatePostgres>();
    try {
      for (const name of NODE_NAMES) {
        const server = options.hosts
          ? await options.hosts.server(name, password)
          : await startPrivatePostgres(`${options.label}-${name}`, { password });
        servers.set(name, server);
        // The stack's servers run with synchronous_commit = off; production runs on.
        await server.configure({ synchronous_commit: "on" });
        await runSql(server.url, options.ddl);
      }
    } catch (err) {
      for (const server of servers.values()) await server.destroy().catch(() => undefined);
      throw err;
    }
    const testCluster = await TestCluster.create({
      name: uniqueName(options.label).replace(/_/g, "-"),
      databases: NODE_NAMES.map((name) => ({
        name,
        url: servers.get(name)?.url as string,
        ...(options.hosts?.place(name) ?? {}),
      })),
      brokers,
      topicPrefix: uniqueName(`${options.label}cl`),
      tables: options.tables,
      automaticFailover: options.automaticFailover ?? false,
    });
    const mode = [...(options.zeroLoss ? ["--zero-loss"] : []), ...(options.nodeFlags ?? [])];
    const ready = new RoleChangeCluster(
      testCluster,
      servers,
      new Map([
        ["a", ["--initial-primary", "a", ...mode]],
        ["b", mode],
        ["c", mode],
      ]),
      brokers,
    );
    try {
      await ready.bootstrap();
    } catch (err) {
      await ready.destroy();
      throw err;
    }
    return ready;
  }

  private async bootstrap(): Promise<void> {
    this.startNode("a");
    await this.waitForAnswer("a", "/primary");
    for (const name of ["b", "c"]) {
      const seed = spawnDiffrelay([
        "seed",
        "--source-url",
        this.url("a"),
        "--standby-url",
        this.url(name),
        "--standby-name",
        name,
        "--brokers",
        this.brokers.join(","),
        "--topic",
        `${this.cluster.topicPrefix}.${this.cluster.name}`,
      ]);
      const seeded = await exitWithin(seed, 120_000);
      if (seeded.code !== 0)
        throw new Error(`seed of ${name} exited ${seeded.code}:\n${tail(seed.output())}`);
      this.startNode(name);
    }
    for (const name of ["b", "c"]) await this.waitForAnswer(name, "/replica");
  }

  /** Waits for 200 from one of the node's paths; fails at once if its process exits. */
  private async waitForAnswer(node: string, path: string, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((await this.cluster.probe(node, path)) !== 200) {
      const exit = this.exits.get(node);
      if (exit || Date.now() > deadline) {
        throw new Error(
          `${node}${path} did not answer 200 ${exit ? `: its node exited (code ${exit.code}, signal ${exit.signal})` : `within ${timeoutMs} ms`}:\n${tail(this.process(node).output())}`,
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** How the node's current process exited, if it has. */
  exitOf(node: string): ExitInfo | undefined {
    return this.exits.get(node);
  }

  url(node: string): string {
    return this.cluster.spec(node).databaseUrl;
  }

  process(node: string): DiffrelayProcess {
    const p = this.cluster.processes.get(node);
    if (!p) throw new Error(`node ${node} was never started`);
    return p;
  }

  /** Starts the node with its own command line, the same every time. */
  startNode(node: string): DiffrelayProcess {
    const p = this.cluster.start(node, this.commandLines.get(node));
    this.exits.delete(node);
    p.exited.then((exit) => {
      if (this.cluster.processes.get(node) === p) this.exits.set(node, exit);
    });
    return p;
  }

  /** Stops the node (SIGTERM, as a supervisor does; SIGKILL for a crash) and starts it with the same line. */
  async restartNode(node: string, signal: "SIGTERM" | "SIGKILL"): Promise<void> {
    const p = this.process(node);
    if (signal === "SIGTERM") {
      const exit = await stopProcess(p, 30_000);
      if (exit.signal === "SIGKILL")
        throw new Error(`node ${node} did not stop within 30 s of SIGTERM:\n${tail(p.output())}`);
    } else {
      p.kill("SIGKILL");
      await p.exited;
    }
    this.startNode(node);
  }

  async killNode(node: string): Promise<void> {
    const p = this.process(node);
    p.kill("SIGKILL");
    await p.exited;
  }

  /** A machine's death: its database server and its node killed with SIGKILL. */
  async killMachine(node: string): Promise<void> {
    await Promise.all([this.servers.get(node)?.kill(), this.killNode(node)]);
  }

  /** The database server alone killed with SIGKILL (postmaster and backends); the node lives on. */
  async killServer(node: string): Promise<void> {
    await this.servers.get(node)?.kill();
  }

  /** The database server started again (crash recovery), as its supervisor would. */
  async restartServer(node: string): Promise<void> {
    await this.servers.get(node)?.restart();
  }

  /** The machine comes back: its server (crash recovery), then its node with its own command line. */
  async restartMachine(node: string): Promise<void> {
    await this.servers.get(node)?.restart();
    this.startNode(node);
  }

  switchoverProcess(to: string, timeoutMs = 30_000): DiffrelayProcess {
    return spawnDiffrelay([
      "switchover",
      ...this.cluster.clusterArgs(),
      "--to",
      to,
      "--json",
      "--timeout",
      String(timeoutMs),
    ]);
  }

  async switchover(to: string): Promise<CommandRun> {
    const p = this.switchoverProcess(to);
    const exit = await exitWithin(p, 90_000);
    return { code: exit.code, output: p.output() };
  }

  failoverProcess(to: string): DiffrelayProcess {
    return spawnDiffrelay(["failover", ...this.cluster.clusterArgs(), "--to", to, "--json"]);
  }

  async failover(to: string): Promise<CommandRun> {
    const p = this.failoverProcess(to);
    const exit = await exitWithin(p, 180_000);
    return { code: exit.code, output: p.output() };
  }

  async status(node: string): Promise<NodeStatus | null> {
    return this.cluster.status(node).catch(() => null);
  }

  /** Each node's role, epochs, phase, rejoin and last error, for failure messages. */
  async describe(): Promise<string> {
    const lines: string[] = [];
    for (const name of NODE_NAMES) {
      const s = await this.status(name);
      const exit = this.exits.get(name);
      lines.push(
        exit
          ? `${name}: its node exited (code ${exit.code}, signal ${exit.signal})`
          : s === null
            ? `${name}: no answer`
            : `${name}: ${JSON.stringify({
                nodeRole: s.nodeRole,
                epoch: s.epoch,
                clusterEpoch: s.clusterEpoch,
                clusterPrimary: s.clusterPrimary,
                phase: s.phase,
                writable: s.writable,
                fenced: s.fenced,
                rejoin: s.rejoin && { state: s.rejoin.state, epoch: s.rejoin.epoch, error: s.rejoin.error },
                lastError: s.lastError,
              })}`,
      );
    }
    return lines.join("\n");
  }

  /** The last lines of every node's output, for failure messages. */
  outputs(lines = 25): string {
    return NODE_NAMES.map(
      (n) => `--- node ${n} ---\n${tail(this.cluster.processes.get(n)?.output() ?? "(not started)", lines)}`,
    ).join("\n");
  }

  async destroy(): Promise<void> {
    await this.cluster.stopAll().catch(() => undefined);
    for (const server of this.servers.values()) await server.destroy().catch(() => undefined);
    const admin = new Kafka({
      clientId: "role-change-cleanup",
      brokers: this.brokers,
      logLevel: logLevel.NOTHING,
    }).admin();
    await admin.connect();
    try {
      const topics = (await admin.listTopics()).filter((t) => t.startsWith(`${this.cluster.topicPrefix}.`));
      if (topics.length) await admin.deleteTopics({ topics }).catch(() => undefined);
    } finally {
      await admin.disconnect();
    }
  }
}
