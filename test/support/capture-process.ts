// Starts and stops `diffrelay capture` as a real child process for acceptance tests.
import { readFileSync } from "node:fs";
import { type DiffrelayProcess, spawnDiffrelay } from "./child-process.js";
import { createTestDatabase, runSql, type TestDatabase, testServices, uniqueName } from "./services.js";
import { deleteTopics, TopicFollower } from "./topic-reader.js";

export interface CaptureOptions {
  sourceUrl: string;
  brokers: string[];
  slot: string;
  publication: string;
  topic: string;
  extraArgs?: string[];
}

export function captureArgs(o: CaptureOptions): string[] {
  return [
    "capture",
    "--source-url",
    o.sourceUrl,
    "--brokers",
    o.brokers.join(","),
    "--slot",
    o.slot,
    "--publication",
    o.publication,
    "--topic",
    o.topic,
    "--metrics-port",
    "0",
    ...(o.extraArgs ?? []),
  ];
}

/** Spawns a capture and resolves once it streams from the slot and publishes to the topic. */
export async function startCapture(o: CaptureOptions, timeoutMs = 60_000): Promise<DiffrelayProcess> {
  const proc = spawnDiffrelay(captureArgs(o));
  try {
    await proc.waitForOutput(/"capture publishing"/, timeoutMs);
    await proc.waitForOutput(/"logical replication started"/, timeoutMs);
  } catch (err) {
    proc.kill("SIGKILL");
    await proc.exited;
    throw err;
  }
  return proc;
}

/** SIGTERM, then SIGKILL if it has not exited within `graceMs`. Resolves once the process is gone. */
export async function stopCapture(proc: DiffrelayProcess | undefined, graceMs = 15_000): Promise<void> {
  if (!proc) return;
  if (!proc.kill("SIGTERM")) {
    await proc.exited;
    return;
  }
  const timer = setTimeout(() => proc.kill("SIGKILL"), graceMs);
  try {
    await proc.exited;
  } finally {
    clearTimeout(timer);
  }
}

/** Waits until no walsender holds the slot (after a capture died, its walsender notices the closed socket). */
export async function waitForSlotReleased(url: string, slot: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await runSql<{ active: boolean }>(
      url,
      "SELECT active FROM pg_replication_slots WHERE slot_name = $1",
      [slot],
    );
    if (rows.length === 1 && rows[0]?.active === false) return;
    if (Date.now() > deadline) throw new Error(`slot ${slot} still active after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** /proc/<pid>/status of a process, parsed as "Key: value" lines (Linux only). */
export function procStatus(pid: number): Map<string, string> {
  const text = readFileSync(`/proc/${pid}/status`, "utf8");
  const fields = new Map<string, string>();
  for (const line of text.split("\n")) {
    const at = line.indexOf(":");
    if (at > 0) fields.set(line.slice(0, at), line.slice(at + 1).trim());
  }
  return fields;
}

/** A /proc/<pid>/status memory field (e.g. "VmHWM", "VmRSS") in bytes. */
export function procMemoryBytes(pid: number, field: "VmHWM" | "VmRSS"): number {
  const value = procStatus(pid).get(field);
  const match = value && /^(\d+)\s+kB$/.exec(value);
  if (!match) throw new Error(`/proc/${pid}/status has no ${field} in kB: ${value}`);
  return Number(match[1]) * 1024;
}

/** The command line of a process, as its argv. */
export function procCmdline(pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean);
}

/** The /metrics URL a capture logged at start ("serving metrics"). */
export function metricsUrl(proc: DiffrelayProcess): string {
  const match = /"url":"(http:\/\/127\.0\.0\.1:\d+\/metrics)"[^\n]*"msg":"serving metrics/.exec(
    proc.output(),
  );
  if (!match?.[1]) throw new Error(`no "serving metrics" line in the capture's output:\n${proc.output()}`);
  return match[1];
}

/** Samples of a Prometheus text exposition, by metric name (labels ignored, last sample wins). */
export async function scrapeMetrics(url: string): Promise<Map<string, number>> {
  const text = await (await fetch(url)).text();
  const samples = new Map<string, number>();
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{[^}]*\})?\s+(\S+)$/.exec(line);
    if (match?.[1] && match[2]) samples.set(match[1], Number(match[2]));
  }
  return samples;
}

/**
 * A capture under test: a fresh source database with the given DDL, a capture process streaming it
 * into fresh topics, and a follower reading the data topic. stop() undoes all of it.
 */
export interface CaptureFixture {
  db: TestDatabase;
  capture: DiffrelayProcess;
  follower: TopicFollower;
  slot: string;
  publication: string;
  topic: string;
  stop(): Promise<void>;
}

export async function startCaptureFixture(prefix: string, ddl: string): Promise<CaptureFixture> {
  const services = testServices();
  const slot = uniqueName(`${prefix}_slot`);
  const publication = uniqueName(`${prefix}_pub`);
  const topic = uniqueName(`${prefix}_topic`);
  const db = await createTestDatabase(services.sourceUrl, prefix);
  let capture: DiffrelayProcess | undefined;
  let follower: TopicFollower | undefined;
  const stop = async () => {
    await follower?.stop();
    await stopCapture(capture);
    await db.drop();
    await deleteTopics(services.kafkaBrokers, [topic, `${topic}.schemas`]);
  };
  try {
    await runSql(db.url, ddl);
    capture = await startCapture({
      sourceUrl: db.url,
      brokers: services.kafkaBrokers,
      slot,
      publication,
      topic,
    });
    follower = await TopicFollower.start(services.kafkaBrokers, topic, "data");
  } catch (err) {
    await stop();
    throw err;
  }
  return { db, capture, follower, slot, publication, topic, stop };
}
