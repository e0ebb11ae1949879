// A real Prometheus server for monitoring tests: started on a free 127.0.0.1 port with a temporary config
// and data directory, stopped by pid. The binaries come from Debian's `prometheus` package, which the
// test run's global setup installs when missing.
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { commandPath, missingCommandsMessage } from "../../scripts/stack/debian-packages.js";

const running = new Set<ChildProcess>();
// A test that fails before its afterAll must not leave a Prometheus behind after the worker exits.
process.once("exit", () => {
  for (const child of running) if (child.pid !== undefined) process.kill(child.pid, "SIGKILL");
});

/** Path of a Prometheus tool (prometheus, promtool); the run's global setup installs them when missing. */
export function prometheusTool(name: "prometheus" | "promtool"): string {
  const path = commandPath(name);
  if (path === undefined)
    throw new Error(missingCommandsMessage([{ command: name, debianPackage: "prometheus" }]));
  return path;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

export interface ScrapeJob {
  job: string;
  /** host:port of each /metrics endpoint. */
  targets: string[];
}

export interface PrometheusOptions {
  jobs: ScrapeJob[];
  /** Rule files' contents (YAML text), written into the temporary directory. */
  rules?: string[];
  intervalSeconds?: number;
}

/** One series of an instant query's result. */
export interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface ActiveAlert {
  labels: Record<string, string>;
  state: "pending" | "firing";
}

export class PrometheusServer {
  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
    readonly url: string,
    private readonly output: () => string,
  ) {}

  static async start(options: PrometheusOptions): Promise<PrometheusServer> {
    const binary = prometheusTool("prometheus");
    const dir = mkdtempSync(join(tmpdir(), "diffrelay-prometheus-"));
    const interval = `${options.intervalSeconds ?? 1}s`;
    const ruleFiles = (options.rules ?? []).map((text, i) => {
      const file = join(dir, `rules-${i}.yml`);
      writeFileSync(file, text);
      return file;
    });
    const config = {
      global: { scrape_interval: interval, evaluation_interval: interval, scrape_timeout: interval },
      rule_files: ruleFiles,
      scrape_configs: options.jobs.map((j) => ({
        job_name: j.job,
        static_configs: [{ targets: j.targets }],
      })),
    };
    writeFileSync(join(dir, "prometheus.yml"), stringify(config));
    const port = await freePort();
    const child = spawn(
      binary,
      [
        `--config.file=${join(dir, "prometheus.yml")}`,
        `--storage.tsdb.path=${join(dir, "data")}`,
        `--web.listen-address=127.0.0.1:${port}`,
        "--log.level=warn",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    running.add(child);
    child.once("close", () => running.delete(child));
    let output = "";
    child.stdout?.on("data", (c: Buffer) => {
      output += c.toString();
    });
    child.stderr?.on("data", (c: Buffer) => {
      output += c.toString();
    });
    const server = new PrometheusServer(child, dir, `http://127.0.0.1:${port}`, () => output);
    try {
      await server.waitUntil(
        async () => (await fetch(`${server.url}/-/ready`)).ok,
        30_000,
        "Prometheus to be ready",
      );
    } catch (err) {
      await server.stop();
      throw err;
    }
    return server;
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  async query(expr: string): Promise<Sample[]> {
    const response = await fetch(`${this.url}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const body = (await response.json()) as { status: string; error?: string; data?: { result: Sample[] } };
    if (body.status !== "success") throw new Error(`query ${expr} failed: ${body.error}`);
    return body.data?.result ?? [];
  }

  async alerts(): Promise<ActiveAlert[]> {
    const response = await fetch(`${this.url}/api/v1/alerts`);
    const body = (await response.json()) as { data: { alerts: ActiveAlert[] } };
    return body.data.alerts;
  }

  /** Polls `check` every 500 ms; throws with Prometheus's output once `timeoutMs` has passed. */
  async waitUntil(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.child.exitCode !== null) throw new Error(`Prometheus exited:\n${this.output()}`);
      if (await check().catch(() => false)) return;
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for ${what}; Prometheus:\n${this.output()}`);
      await new Promise((r) => setTimeout(r, 500));
    }
  }

  /** SIGTERM by pid (SIGKILL after 10 s), then removes the config and data directory. */
  async stop(): Promise<void> {
    const { child } = this;
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      const exited = new Promise<void>((resolve) => child.once("close", () => resolve()));
      process.kill(child.pid, "SIGTERM");
      const timer = setTimeout(() => {
        if (child.pid !== undefined && child.exitCode === null) process.kill(child.pid, "SIGKILL");
      }, 10_000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
