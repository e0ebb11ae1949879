// diffrelay under test: `diffrelay capture` on the run's primary database and `diffrelay apply` to
// standby1, each its own process (as in production), started with the same launcher as the demo.
import kafkajs from "kafkajs";
import { type RunningService, startDiffrelay, stopService } from "../scripts/demo/child-services.js";
import { freePort } from "../scripts/stack/free-port.js";
import type { BenchStack } from "./context.js";
import { profilingEnv } from "./cpu-profile.js";
import { sleep, sql } from "./db.js";

export class DiffrelayPipeline {
  readonly slot: string;
  readonly topic: string;
  capture?: RunningService;
  apply?: RunningService;

  constructor(
    readonly stack: BenchStack,
    db: string,
    readonly primary: string,
    readonly standby: string,
  ) {
    this.slot = db;
    this.topic = `diffrelay.${db}`;
  }

  get publication(): string {
    return this.slot;
  }

  async start(logDir: string, profileDir?: string): Promise<void> {
    await this.startCapture(logDir, profileDir);
    await this.startApply(logDir, profileDir);
  }

  private env(profileDir?: string): NodeJS.ProcessEnv {
    const common: NodeJS.ProcessEnv = {
      DIFFRELAY_KAFKA_BROKERS: this.stack.brokers,
      DIFFRELAY_TOPIC: this.topic,
      DIFFRELAY_LOG_LEVEL: "info",
    };
    if (profileDir) Object.assign(common, profilingEnv(profileDir));
    return common;
  }

  /** Starts `diffrelay capture` and waits for its slot (it creates it at its first start). */
  async startCapture(logDir: string, profileDir?: string, extraArgs: string[] = []): Promise<void> {
    this.capture = startDiffrelay(
      `${this.slot}-capture`,
      ["capture", "--slot", this.slot, "--publication", this.publication, ...extraArgs],
      { ...this.env(profileDir), DIFFRELAY_SOURCE_URL: this.primary },
      await freePort(),
      logDir,
    );
    // The capture creates its slot at start: nothing written before it exists would be captured.
    const deadline = Date.now() + 90_000;
    for (;;) {
      const rows = await sql(this.primary, "SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", [
        this.slot,
      ]);
      if (rows.length) break;
      if (this.capture.child.exitCode !== null) {
        throw new Error(
          `diffrelay capture exited ${this.capture.child.exitCode}; see ${this.capture.logFile}`,
        );
      }
      if (Date.now() > deadline)
        throw new Error(`diffrelay capture made no slot; see ${this.capture.logFile}`);
      await sleep(100);
    }
  }

  async startApply(logDir: string, profileDir?: string): Promise<void> {
    this.apply = startDiffrelay(
      `${this.slot}-apply`,
      ["apply", "--standby-name", "standby1"],
      { ...this.env(profileDir), DIFFRELAY_STANDBY_URL: this.standby },
      await freePort(),
      logDir,
    );
  }

  /** Stops the applier: the standby is down as far as replication goes; the capture goes on. */
  async stopApply(): Promise<void> {
    if (this.apply) await stopService(this.apply);
    this.apply = undefined;
  }

  async stopCapture(): Promise<void> {
    if (this.capture) await stopService(this.capture);
    this.capture = undefined;
  }

  /** The walsender serving the capture's slot on the primary (its decoding CPU belongs to diffrelay). */
  async walsenderPid(): Promise<number | undefined> {
    const rows = await sql<{ pid: number | null }>(
      this.primary,
      "SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1",
      [this.slot],
    );
    return rows[0]?.pid ?? undefined;
  }

  async stop(): Promise<void> {
    // Apply first, so the capture is not stopped under a consumer still reading.
    await this.stopApply();
    await this.stopCapture();
  }

  async deleteTopics(): Promise<void> {
    const admin = new kafkajs.Kafka({
      brokers: [this.stack.brokers],
      logLevel: kafkajs.logLevel.NOTHING,
    }).admin();
    await admin.connect();
    try {
      const existing = await admin.listTopics();
      const ours = existing.filter((t) => t === this.topic || t.startsWith(`${this.topic}.`));
      if (ours.length) await admin.deleteTopics({ topics: ours });
    } finally {
      await admin.disconnect();
    }
  }
}
