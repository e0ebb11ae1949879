// The frame of every fault test file: a private pipeline (source + two standbys, capture + two appliers as
// processes) under a concurrent write load, faults injected by the test, and at the end the proof that
// nothing was lost or doubled on any standby. close() puts the stack back as it was, even after a failure.
import { expect } from "vitest";
import { startCapture, waitForSlotReleased } from "./capture-process.js";
import type { DiffrelayProcess } from "./child-process.js";
import { checkStandby, FaultTally, type StandbyCheck } from "./fault-checks.js";
import { type FaultStack, requireStack, restoreStack } from "./fault-stack.js";
import { ReplicationPipeline, stopProcess } from "./replication-pipeline.js";
import { type TestServices, testServices, withDatabase } from "./services.js";
import { WRITE_LOAD_DDL, WriteLoad, type WriteLoadResult } from "./write-load.js";

export interface ScenarioOptions {
  prefix: string;
  /** Server URLs the pipeline's processes use (default: the services'); fault proxies go here. */
  sourceServerUrl?: string;
  standbyServerUrls?: [string, string];
  brokers?: string[];
  captureArgs?: string[];
  applyArgs?: string[];
  writers?: number;
}

export const STANDBYS = ["s1", "s2"] as const;

export class FaultScenario {
  readonly tally = new FaultTally();
  readonly startedAt = Date.now();
  load!: WriteLoad;
  private loadStopped = false;
  /** Captures this scenario started after a kill (the pipeline stops only the ones it started). */
  private readonly captures = new Set<DiffrelayProcess>();

  private constructor(
    readonly services: TestServices,
    readonly stack: FaultStack,
    readonly pipeline: ReplicationPipeline,
    private readonly captureExtraArgs: string[],
  ) {}

  static async start(o: ScenarioOptions): Promise<FaultScenario> {
    const services = testServices();
    const stack = requireStack(services);
    expect(services.standbyUrls.length, "two standby servers").toBeGreaterThanOrEqual(2);
    const standbyUrls = o.standbyServerUrls ?? [
      services.standbyUrls[0] as string,
      services.standbyUrls[1] as string,
    ];
    const pipeline = await ReplicationPipeline.start({
      sourceServerUrl: o.sourceServerUrl ?? services.sourceUrl,
      standbys: STANDBYS.map((name, i) => ({ name, serverUrl: standbyUrls[i] as string })),
      brokers: o.brokers ?? services.kafkaBrokers,
      prefix: o.prefix,
      ddl: WRITE_LOAD_DDL,
      // Frequent heartbeats: verify's snapshot is confirmed quickly once the load stops.
      captureArgs: ["--heartbeat-interval-ms", "500", ...(o.captureArgs ?? [])],
      applyArgs: o.applyArgs,
    });
    const scenario = new FaultScenario(services, stack, pipeline, [
      "--heartbeat-interval-ms",
      "500",
      ...(o.captureArgs ?? []),
    ]);
    try {
      scenario.load = new WriteLoad(scenario.sourceUrl, o.writers ?? 3);
      await scenario.load.start();
      await scenario.load.waitForCommits(50);
      await pipeline.waitForCatchUp();
    } catch (err) {
      await scenario.close();
      throw err;
    }
    return scenario;
  }

  /** The source database, straight to the server (never through a proxy). */
  get sourceUrl(): string {
    return withDatabase(this.services.sourceUrl, this.pipeline.source.name);
  }

  /** A standby's database, straight to its server. */
  standbyUrl(name: (typeof STANDBYS)[number]): string {
    const i = STANDBYS.indexOf(name);
    return withDatabase(this.services.standbyUrls[i] as string, this.pipeline.standby(name).db.name);
  }

  /** Starts a new capture with the pipeline's arguments once the dead one's walsender let go of the slot. */
  async restartCapture(): Promise<DiffrelayProcess> {
    const { pipeline } = this;
    await waitForSlotReleased(this.sourceUrl, pipeline.slot);
    const options = {
      sourceUrl: pipeline.source.url,
      brokers: pipeline.options.brokers,
      slot: pipeline.slot,
      publication: pipeline.publication,
      topic: pipeline.topic,
      extraArgs: this.captureExtraArgs,
    };
    const proc = await startCapture(options);
    this.captures.add(proc);
    pipeline.capture = proc;
    return proc;
  }

  /**
   * After a fault: the load commits again and every standby catches up with it, within the deadline.
   * Returns how long recovery took.
   */
  async recovered(timeoutMs = 120_000): Promise<number> {
    const t0 = Date.now();
    await this.load.waitForCommits(20, timeoutMs);
    await this.pipeline.waitForCatchUp(undefined, timeoutMs);
    this.load.assertHealthy();
    return Date.now() - t0;
  }

  /** Stops the load and proves every standby equals the source; prints the file's fault report. */
  async finish(file: string): Promise<{ load: WriteLoadResult; checks: StandbyCheck[] }> {
    this.loadStopped = true;
    const load = await this.load.stop();
    await this.pipeline.waitForCatchUp(undefined, 120_000);
    const checks: StandbyCheck[] = [];
    const problems: string[] = [];
    for (const name of STANDBYS) {
      const { problems: p, ...check } = await checkStandby(this.pipeline, name, load, {
        source: this.sourceUrl,
        standby: this.standbyUrl(name),
      });
      checks.push(check);
      problems.push(...p);
    }
    console.log(this.tally.report(file, load, checks, this.startedAt));
    expect(problems).toEqual([]);
    expect(checks.every((c) => c.transactions === load.committed + load.ambiguousCommitted)).toBe(true);
    return { load, checks };
  }

  /** Ends the load and the pipeline, after starting any server a failed test left stopped. */
  async close(): Promise<void> {
    try {
      await restoreStack(this.stack);
    } finally {
      if (!this.loadStopped && this.load) await this.load.stop().catch(() => undefined);
      await Promise.all([...this.captures].map((p) => stopProcess(p)));
      await this.pipeline.stop();
    }
  }
}
