// HA cluster nodes as real `diffrelay node` processes, their HTTP API, and a write load that follows the primary.
import pg from "pg";
import { ClusterStore, type ClusterView } from "../../operations/cluster/index.js";
import { freePort } from "../../scripts/stack/free-port.js";
import { createKafka } from "../../src/kafka/kafka-client.js";
import { createLogger } from "../../src/observability/logger.js";
import { type DiffrelayProcess, spawnDiffrelay } from "./child-process.js";
import { exitWithin, stopProcess } from "./replication-pipeline.js";

export interface NodeSpec {
  name: string;
  databaseUrl: string;
  port: number;
  /** The address its HTTP API listens on; 127.0.0.1 unless it runs in a network namespace of its own. */
  host?: string;
  /** The network namespace its node runs in (the fault suite's hosts), if any. */
  netns?: string;
}

export class TestCluster {
  readonly processes = new Map<string, DiffrelayProcess>();
  /** Each node's own command line (extra flags and environment), as a supervisor would re-run it. */
  private readonly lines = new Map<string, { extra: string[]; env: Record<string, string> }>();

  private constructor(
    readonly name: string,
    readonly nodes: NodeSpec[],
    private readonly brokers: string[],
    readonly topicPrefix: string,
    private readonly tables: string[],
    private readonly automaticFailover: boolean,
  ) {}

  static async create(options: {
    name: string;
    databases: { name: string; url: string; host?: string; netns?: string }[];
    brokers: string[];
    topicPrefix: string;
    tables: string[];
    /** Off by default: tests of the manual role changes must not race an election. */
    automaticFailover?: boolean;
  }): Promise<TestCluster> {
    const nodes: NodeSpec[] = [];
    for (const db of options.databases) {
      // A namespace has its own ports: every node there listens on the same one.
      const port = db.netns === undefined ? await freePort() : 9400;
      nodes.push({
        name: db.name,
        databaseUrl: db.url,
        port,
        ...(db.host === undefined ? {} : { host: db.host }),
        ...(db.netns === undefined ? {} : { netns: db.netns }),
      });
    }
    return new TestCluster(
      options.name,
      nodes,
      options.brokers,
      options.topicPrefix,
      options.tables,
      options.automaticFailover ?? false,
    );
  }

  apiUrl(node: string): string {
    const spec = this.spec(node);
    return `http://${spec.host ?? "127.0.0.1"}:${spec.port}`;
  }

  spec(node: string): NodeSpec {
    const spec = this.nodes.find((n) => n.name === node);
    if (!spec) throw new Error(`no node ${node}`);
    return spec;
  }

  /** The flags every cluster command of this cluster takes. */
  clusterArgs(): string[] {
    return ["--cluster", this.name, "--brokers", this.brokers.join(","), "--topic-prefix", this.topicPrefix];
  }

  start(node: string, extra: string[] = [], env: Record<string, string> = {}): DiffrelayProcess {
    const spec = this.spec(node);
    this.lines.set(node, { extra, env });
    const members = this.nodes.filter((n) => n.name !== node).map((n) => `${n.name}=${this.apiUrl(n.name)}`);
    const p = spawnDiffrelay(
      [
        "node",
        ...this.clusterArgs(),
        "--node-name",
        node,
        "--database-url",
        spec.databaseUrl,
        "--members",
        members.join(","),
        "--metrics-port",
        String(spec.port),
        ...(spec.host === undefined ? [] : ["--metrics-host", spec.host]),
        "--tables",
        this.tables.join(","),
        "--heartbeat-interval-ms",
        "500",
        "--log-level",
        "info",
        ...(this.automaticFailover ? [] : ["--manual-failover"]),
        ...extra,
      ],
      env,
      spec.netns,
    );
    this.processes.set(node, p);
    return p;
  }

  /** The cluster's state store as the test itself reads and writes it; close it after use. */
  store(): { store: ClusterStore; kafka: ReturnType<typeof createKafka> } {
    const logger = createLogger("warn", "cluster-test");
    const kafka = createKafka(
      {
        brokers: this.brokers,
        clientId: "cluster-test",
        tls: { enabled: false, insecure: false },
        requireDurability: false,
      },
      logger,
    );
    const store = new ClusterStore({
      kafka,
      logger,
      topicPrefix: this.topicPrefix,
      cluster: this.name,
      durability: {},
    });
    return { store, kafka };
  }

  /** What the cluster topic says now. */
  async view(): Promise<ClusterView> {
    const { store } = this.store();
    try {
      return await store.read();
    } finally {
      await store.close();
    }
  }

  /** `diffrelay switchover --to` with a JSON report, as an operator runs it. */
  async switchover(
    to: string,
    timeoutMs = 30_000,
  ): Promise<{ exit: { code: number | null }; output: string }> {
    const p = spawnDiffrelay([
      "switchover",
      ...this.clusterArgs(),
      "--to",
      to,
      "--json",
      "--timeout",
      String(timeoutMs),
    ]);
    const exit = await exitWithin(p, timeoutMs * 2 + 30_000);
    return { exit, output: p.output() };
  }

  /** Stops a node (SIGTERM) and starts it again with the same command line. */
  async restart(node: string): Promise<DiffrelayProcess> {
    const running = this.processes.get(node);
    if (running) await stopProcess(running);
    const line = this.lines.get(node) ?? { extra: [], env: {} };
    return this.start(node, line.extra, line.env);
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.processes.values()].map((p) => stopProcess(p)));
  }

  /** The HTTP status of one endpoint of a node; 0 when it does not answer. */
  async probe(node: string, path: string): Promise<number> {
    try {
      const response = await fetch(`${this.apiUrl(node)}${path}`, { signal: AbortSignal.timeout(2000) });
      await response.body?.cancel();
      return response.status;
    } catch {
      return 0;
    }
  }

  // biome-ignore lint/suspicious/noExplicitAny: /status is the node's JSON document, checked field by field.
  async status(node: string): Promise<any> {
    const response = await fetch(`${this.apiUrl(node)}/status`, { signal: AbortSignal.timeout(2000) });
    return response.json();
  }

  async waitFor(node: string, path: string, code: number, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while ((await this.probe(node, path)) !== code) {
      if (Date.now() > deadline) {
        throw new Error(
          `${node}${path} did not answer ${code} within ${timeoutMs} ms; output:\n${this.processes.get(node)?.output().slice(-3000)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  /** The node whose /primary answers 200 now, if any. */
  async primary(): Promise<NodeSpec | null> {
    for (const n of this.nodes) if ((await this.probe(n.name, "/primary")) === 200) return n;
    return null;
  }
}

/**
 * Commits on this database wait as production's do (the stack's servers run synchronous_commit = off):
 * a node's own writes that would wait for a synchronous standby show up as hangs in the HA tests.
 */
export async function commitSynchronously(db: { name: string; url: string }): Promise<void> {
  const client = new pg.Client({ connectionString: db.url });
  await client.connect();
  try {
    await client.query(`ALTER DATABASE ${pg.escapeIdentifier(db.name)} SET synchronous_commit = on`);
  } finally {
    await client.end();
  }
}

/** Rows the load writes: a serial key (from the primary's sequence), and the writer's own numbering. */
export const HA_LOAD_DDL =
  "CREATE TABLE ha_writes (id bigserial PRIMARY KEY, writer integer NOT NULL, seq integer NOT NULL, UNIQUE (writer, seq));";
export const HA_LOAD_TABLE = "public.ha_writes";

/**
 * Writers that each insert one row per transaction into whichever node /primary
 * names, moving on when the primary changes. A row is acknowledged when its
 * INSERT answered; one whose answer was lost is looked up at the end. Any
 * other failure of a statement that reached the primary (a duplicate serial
 * key) is recorded as an error.
 */
export class PrimaryFollowingLoad {
  private stopping = false;
  private readonly running: Promise<void>[] = [];
  readonly acknowledged: { writer: number; seq: number; id: string }[] = [];
  readonly ambiguous: { writer: number; seq: number }[] = [];
  readonly errors: string[] = [];

  constructor(
    private readonly cluster: TestCluster,
    private readonly writers = 2,
    private readonly pauseMs = 5,
  ) {}

  start(): void {
    for (let w = 1; w <= this.writers; w++) this.running.push(this.run(w));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    await Promise.all(this.running);
  }

  private async run(writer: number): Promise<void> {
    let seq = 0;
    while (!this.stopping) {
      const primary = await this.cluster.primary();
      if (!primary) {
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      const client = new pg.Client({ connectionString: primary.databaseUrl, connectionTimeoutMillis: 2000 });
      client.on("error", () => undefined);
      try {
        await client.connect();
      } catch {
        await new Promise((r) => setTimeout(r, 50));
        continue;
      }
      try {
        while (!this.stopping) {
          seq++;
          try {
            const { rows } = await client.query<{ id: string }>(
              "INSERT INTO ha_writes (writer, seq) VALUES ($1, $2) RETURNING id::text",
              [writer, seq],
            );
            this.acknowledged.push({ writer, seq, id: rows[0]?.id as string });
          } catch (err) {
            const e = err as { code?: string; message: string };
            // Read-only (25006) or ended by the fence (57P01), refused connections: the primary moved.
            if (e.code === "25006") break;
            if (e.code === undefined || e.code === "57P01" || e.code === "57P03" || e.code === "08006") {
              this.ambiguous.push({ writer, seq });
              break;
            }
            this.errors.push(`writer ${writer} seq ${seq} on ${primary.name}: ${e.code} ${e.message}`);
            break;
          }
          if (this.pauseMs > 0) await new Promise((r) => setTimeout(r, this.pauseMs));
        }
      } finally {
        await client.end().catch(() => undefined);
      }
    }
  }
}
