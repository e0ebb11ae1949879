import { type ChildProcess, spawn } from "node:child_process";
import { createWriteStream } from "node:fs";
import { join } from "node:path";

export interface RunningService {
  name: string;
  child: ChildProcess;
  /** Its HTTP API: /status, /metrics, and a node's /primary and /replica. */
  apiUrl: string;
  statusUrl: string;
  logFile: string;
}

/** Starts `diffrelay <args>` in the background, its JSON logs going to a file. */
export function startDiffrelay(
  name: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  metricsPort: number,
  logDir: string,
): RunningService {
  const logFile = join(logDir, `demo-${name}.log`);
  const out = createWriteStream(logFile);
  const child = spawn(
    process.execPath,
    ["bin/diffrelay.js", ...args, "--metrics-port", String(metricsPort)],
    {
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    },
  );
  child.stdout?.pipe(out);
  child.stderr?.pipe(out);
  const apiUrl = `http://127.0.0.1:${metricsPort}`;
  return { name, child, apiUrl, statusUrl: `${apiUrl}/status`, logFile };
}

/** The HTTP status one path of its API answers; 0 when it does not answer. */
export async function probe(service: RunningService, path: string): Promise<number> {
  try {
    const response = await fetch(`${service.apiUrl}${path}`, { signal: AbortSignal.timeout(1000) });
    await response.body?.cancel();
    return response.status;
  } catch {
    return 0;
  }
}

export async function fetchStatus(service: RunningService): Promise<Record<string, unknown> | null> {
  try {
    const response = await fetch(service.statusUrl, { signal: AbortSignal.timeout(1000) });
    return (await response.json()) as Record<string, unknown>;
  } catch {
    return null;
  }
}

export async function fetchMetric(service: RunningService, metric: string): Promise<number> {
  const response = await fetch(service.statusUrl.replace(/\/status$/, "/metrics"), {
    signal: AbortSignal.timeout(2000),
  });
  const text = await response.text();
  const line = text.split("\n").find((l) => l.startsWith(`${metric} `) || l.startsWith(`${metric}{`));
  return line ? Number(line.split(" ").pop()) : 0;
}

/** SIGTERM, then SIGKILL if it will not go. */
export async function stopService(service: RunningService): Promise<void> {
  const { child } = service;
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}
