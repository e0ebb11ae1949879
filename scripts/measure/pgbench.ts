import { spawn } from "node:child_process";

export interface PgbenchResult {
  transactions: number;
  tps: number;
  stdout: string;
}

/** pgbench as a child process, so the event loop (and resource sampling) keeps running. */
export function runPgbench(args: string[]): Promise<PgbenchResult> {
  return new Promise((resolve, reject) => {
    const child = spawn("pgbench", args, { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("error", reject);
    child.on("exit", (code) => {
      if (code !== 0) return reject(new Error(`pgbench exited ${code}: ${stderr.slice(-2000)}`));
      resolve({
        transactions: Number(/number of transactions actually processed: (\d+)/.exec(stdout)?.[1] ?? 0),
        tps: Number(/tps = ([\d.]+)/.exec(stdout)?.[1] ?? 0),
        stdout,
      });
    });
  });
}

/** pgbench's arguments for a fixed load: `clients` clients on 2 threads, a script, a seed, without vacuum. */
export function pgbenchArgs(
  url: string,
  script: string,
  clients: number,
  seed: string,
  load: string[],
): string[] {
  return ["-n", "-c", String(clients), "-j", "2", ...load, "--random-seed", seed, "-f", script, url];
}
