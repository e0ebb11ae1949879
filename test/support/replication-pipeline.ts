import kafkajs from "kafkajs";
import { type DiffrelayProcess, type ExitInfo, spawnDiffrelay } from "./child-process.js";
import { createTestDatabase, runSql, type TestDatabase, uniqueName, withClient } from "./services.js";

// kafkajs is CommonJS: its runtime values come through the default export under ESM.
const { Kafka, logLevel, ConfigResourceTypes } = kafkajs;

/**
 * A real replication pipeline for acceptance tests: a fresh source database, one fresh database per
 * standby (each on its own server), the same DDL on all of them, then `diffrelay capture` and one
 * `diffrelay apply` per standby as separate processes.
 *
 * Catch-up is observed through a marker table the pipeline adds on every side: a marker row written on
 * the source commits after every write the test made before it, and a standby is a committed state of
 * the source in commit order, so once the marker is visible there everything before it is too.
 */
export interface PipelineOptions {
  /** Server URLs: the source database and the standby databases are created on them. */
  sourceServerUrl: string;
  /** `applyArgs`: extra arguments for this standby's `apply` process. */
  standbys: { name: string; serverUrl: string; applyArgs?: string[] }[];
  brokers: string[];
  /** Prefix for database, topic, slot and publication names. */
  prefix: string;
  /** Runs on the source and on every standby database before the processes start. */
  ddl: string;
  /** Extra arguments for every `apply` process (e.g. --apply-max-rows). */
  applyArgs?: string[];
  captureArgs?: string[];
  /** Runs one diffrelay command line (default: `node bin/diffrelay.js` here; the container tests run the image). */
  runner?: (args: string[], env?: Record<string, string>) => DiffrelayProcess;
  /** When set, the data topic is created with these configs before the capture starts (e.g. max.message.bytes). */
  topicConfig?: Record<string, string>;
}

export interface StandbyHandle {
  name: string;
  db: TestDatabase;
  /** The running (or last) applier process for this standby. */
  applier: DiffrelayProcess;
}

export const MARKER_TABLE = "public.pipeline_marker";

/** What `diffrelay verify --json` said: its exit code, its output, and its report line parsed. */
export interface VerifyOutcome {
  code: number | null;
  output: string;
  // biome-ignore lint/suspicious/noExplicitAny: the report is verify's JSON, checked field by field in tests.
  report: any;
}
const MARKER_DDL = `CREATE TABLE ${MARKER_TABLE} (id bigint PRIMARY KEY, written_at timestamptz NOT NULL DEFAULT now());`;

export class ReplicationPipeline {
  readonly topic: string;
  readonly slot: string;
  readonly publication: string;
  source!: TestDatabase;
  capture!: DiffrelayProcess;
  readonly standbys = new Map<string, StandbyHandle>();
  private markerId = 0;
  private readonly processes = new Set<DiffrelayProcess>();

  private constructor(readonly options: PipelineOptions) {
    this.topic = uniqueName(`${options.prefix}_topic`);
    this.slot = uniqueName(`${options.prefix}_slot`);
    this.publication = uniqueName(`${options.prefix}_pub`);
  }

  /** Creates databases and tables, starts the capture and the appliers, and waits until they run. */
  static async start(options: PipelineOptions): Promise<ReplicationPipeline> {
    const pipeline = new ReplicationPipeline(options);
    try {
      await pipeline.setUp();
    } catch (err) {
      await pipeline.stop();
      throw err;
    }
    return pipeline;
  }

  private async setUp(): Promise<void> {
    const { options } = this;
    this.source = await createTestDatabase(options.sourceServerUrl, options.prefix);
    await runSql(this.source.url, options.ddl + MARKER_DDL);
    for (const s of options.standbys) {
      const db = await createTestDatabase(s.serverUrl, `${options.prefix}_${s.name}`);
      // Registered before anything else can fail, so stop() drops it.
      this.standbys.set(s.name, { name: s.name, db, applier: undefined as unknown as DiffrelayProcess });
      await runSql(db.url, options.ddl + MARKER_DDL);
    }
    if (options.topicConfig) await this.createTopic(options.topicConfig);
    // The slot exists once the capture publishes: every write from now on reaches the topic.
    await this.spawnCapture().waitForOutput(/"capture publishing"/, 60_000);
    await Promise.all([...this.standbys.keys()].map((name) => this.startApplier(name)));
  }

  /** Spawns the capture (again, after it exited) without waiting for it; `env` adds to its environment. */
  spawnCapture(extraArgs: string[] = [], env: Record<string, string> = {}): DiffrelayProcess {
    this.capture = this.track(
      this.run(
        [
          "capture",
          "--source-url",
          this.source.url,
          "--brokers",
          this.options.brokers.join(","),
          "--slot",
          this.slot,
          "--publication",
          this.publication,
          "--topic",
          this.topic,
          "--metrics-port",
          "0",
          ...(this.options.captureArgs ?? []),
          ...extraArgs,
        ],
        env,
      ),
    );
    return this.capture;
  }

  /** Creates the data topic with these configs, through a real admin client. */
  async createTopic(configs: Record<string, string>): Promise<void> {
    await this.withAdmin((admin) =>
      admin.createTopics({
        topics: [
          {
            topic: this.topic,
            numPartitions: 1,
            configEntries: Object.entries(configs).map(([name, value]) => ({ name, value })),
          },
        ],
        waitForLeaders: true,
      }),
    );
  }

  /** Alters configs of the data topic while the pipeline runs. */
  async alterTopic(configs: Record<string, string>): Promise<void> {
    await this.withAdmin((admin) =>
      admin.alterConfigs({
        validateOnly: false,
        resources: [
          {
            type: ConfigResourceTypes.TOPIC,
            name: this.topic,
            configEntries: Object.entries(configs).map(([name, value]) => ({ name, value })),
          },
        ],
      }),
    );
  }

  private async withAdmin<T>(work: (admin: kafkajs.Admin) => Promise<T>): Promise<T> {
    const kafka = new Kafka({
      clientId: "pipeline-admin",
      brokers: this.options.brokers,
      logLevel: logLevel.NOTHING,
    });
    const admin = kafka.admin();
    await admin.connect();
    try {
      return await work(admin);
    } finally {
      await admin.disconnect();
    }
  }

  private run(args: string[], env: Record<string, string> = {}): DiffrelayProcess {
    return (this.options.runner ?? spawnDiffrelay)(args, env);
  }

  private track(p: DiffrelayProcess): DiffrelayProcess {
    this.processes.add(p);
    void p.exited.then(() => this.processes.delete(p));
    return p;
  }

  standby(name: string): StandbyHandle {
    const s = this.standbys.get(name);
    if (!s) throw new Error(`no standby named ${name}`);
    return s;
  }

  /** Spawns the applier of one standby without waiting for it (a restart after a kill, say). */
  spawnApplier(name: string, extraArgs: string[] = []): DiffrelayProcess {
    const s = this.standby(name);
    s.applier = this.track(
      this.run([
        "apply",
        "--standby-url",
        s.db.url,
        "--standby-name",
        name,
        "--brokers",
        this.options.brokers.join(","),
        "--topic",
        this.topic,
        "--metrics-port",
        "0",
        ...(this.options.applyArgs ?? []),
        ...(this.options.standbys.find((o) => o.name === name)?.applyArgs ?? []),
        ...extraArgs,
      ]),
    );
    return s.applier;
  }

  /** Spawns the applier and waits until it has read the standby's position and starts applying. */
  async startApplier(name: string, extraArgs: string[] = []): Promise<DiffrelayProcess> {
    const p = this.spawnApplier(name, extraArgs);
    await p.waitForOutput(/applying from the standby's position/, 60_000);
    return p;
  }

  /** Writes a marker row on the source; it commits after every source write made before the call. */
  async writeMarker(): Promise<number> {
    const id = ++this.markerId;
    await runSql(this.source.url, `INSERT INTO ${MARKER_TABLE} (id) VALUES ($1)`, [id]);
    return id;
  }

  /**
   * Waits until every named standby (default: all) holds everything the source committed before this
   * call. Fails early, with the applier's output, if an applier exits meanwhile.
   */
  async waitForCatchUp(names: string[] = [...this.standbys.keys()], timeoutMs = 90_000): Promise<void> {
    const id = await this.writeMarker();
    await Promise.all(names.map((name) => this.waitForMarker(name, id, timeoutMs)));
  }

  private async waitForMarker(name: string, id: number, timeoutMs: number): Promise<void> {
    const s = this.standby(name);
    const deadline = Date.now() + timeoutMs;
    await withClient(s.db.url, async (client) => {
      for (;;) {
        const { rowCount } = await client.query(`SELECT 1 FROM ${MARKER_TABLE} WHERE id = $1`, [id]);
        if (rowCount) return;
        const exit = await settledExit(s.applier);
        if (exit) {
          throw new Error(
            `applier ${name} exited (code ${exit.code}, signal ${exit.signal}) before marker ${id} arrived:\n${tail(s.applier.output())}`,
          );
        }
        if (Date.now() > deadline) {
          const pos = await client
            .query("SELECT next_offset::text, last_commit_lsn::text FROM diffrelay.apply_position")
            .then((r) => JSON.stringify(r.rows))
            .catch((e: Error) => e.message);
          throw new Error(
            `standby ${name} did not receive marker ${id} within ${timeoutMs} ms (position ${pos}); applier output:\n${tail(s.applier.output())}\ncapture output:\n${tail(this.capture.output())}`,
          );
        }
        await new Promise((r) => setTimeout(r, 50));
      }
    });
  }

  /**
   * Runs `diffrelay verify --json` for one standby of this pipeline. The URLs default to the servers
   * themselves (fault tests pass direct URLs when the processes go through proxies).
   */
  async verify(
    name: string,
    options: { sourceUrl?: string; standbyUrl?: string; extraArgs?: string[] } = {},
  ): Promise<VerifyOutcome> {
    const p = this.run([
      "verify",
      "--source-url",
      options.sourceUrl ?? this.source.url,
      "--standby-url",
      options.standbyUrl ?? this.standby(name).db.url,
      "--standby-name",
      name,
      "--brokers",
      this.options.brokers.join(","),
      "--topic",
      this.topic,
      "--slot",
      this.slot,
      "--publication",
      this.publication,
      "--json",
      ...(options.extraArgs ?? []),
    ]);
    const exit = await p.exited;
    const line = p
      .output()
      .split("\n")
      .find((l) => l.startsWith('{"standby"'));
    return { code: exit.code, output: p.output(), report: line ? JSON.parse(line) : null };
  }

  /** The standby's stored position (one row per topic partition; this pipeline has one). */
  async position(name: string): Promise<{ nextOffset: bigint; lastCommitLsn: string } | null> {
    const { rows } = await runSql<{ next_offset: string; last_commit_lsn: string }>(
      this.standby(name).db.url,
      "SELECT next_offset::text, last_commit_lsn::text FROM diffrelay.apply_position WHERE topic = $1",
      [this.topic],
    );
    const row = rows[0];
    return row ? { nextOffset: BigInt(row.next_offset), lastCommitLsn: row.last_commit_lsn } : null;
  }

  /** Ends every process this pipeline started, deletes its topics and drops its databases. */
  async stop(): Promise<void> {
    await Promise.all([...this.processes].map((p) => stopProcess(p)));
    const kafka = new Kafka({
      clientId: "pipeline-cleanup",
      brokers: this.options.brokers,
      logLevel: logLevel.NOTHING,
    });
    const admin = kafka.admin();
    await admin
      .connect()
      .then(() => admin.deleteTopics({ topics: [this.topic, `${this.topic}.schemas`], timeout: 10_000 }))
      .catch(() => undefined)
      .finally(() => admin.disconnect().catch(() => undefined));
    await Promise.allSettled([this.source?.drop(), ...[...this.standbys.values()].map((s) => s.db.drop())]);
  }
}

/** The exit of a process if it has already exited, without waiting. */
export async function settledExit(p: DiffrelayProcess): Promise<ExitInfo | null> {
  return Promise.race([p.exited, new Promise<null>((r) => setImmediate(() => r(null)))]);
}

/** The process's exit, failing with its output's tail if it is still running after `ms`. */
export async function exitWithin(p: DiffrelayProcess, ms: number): Promise<ExitInfo> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`still running after ${ms} ms:\n${tail(p.output())}`)), ms);
  });
  try {
    return await Promise.race([p.exited, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** SIGTERM, then SIGKILL if the process has not exited within `graceMs`. */
export async function stopProcess(p: DiffrelayProcess, graceMs = 10_000): Promise<ExitInfo> {
  p.kill("SIGTERM");
  const timer = setTimeout(() => p.kill("SIGKILL"), graceMs);
  try {
    return await p.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** The last lines of a process's output, for error messages. */
export function tail(output: string, lines = 40): string {
  return output.trimEnd().split("\n").slice(-lines).join("\n");
}
