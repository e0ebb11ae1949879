import { spawn } from "node:child_process";

export interface PgbenchResult {
  transactions: number;
  tps: number;
  stdout: string;
  /** Why its clients were aborted (the server's message), when they were; null when the run ended on time. */
  abortedBy: string | null;
}

/**
 * pgbench as a child process, so the event loop (and resource sampling) keeps running.
 * A run whose clients the server cut off (pgbench exits 2 with its partial counts)
 * fails unless `allowAbortedClients`, for a load that is cut off on purpose (a fence).
 */
export function runPgbench(
  args: string[],
  options: { allowAbortedClients?: boolean } = {},
): Promise<PgbenchResult> {
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
      // pgbench names the server's message on the abort line ("client 0 script 0 aborted in command 1
      // query 0: FATAL: …") or, for a session ended between commands, on a line of its own.
      const aborted = /client \d+ (?:script \d+ )?aborted in command \d+/.test(stderr);
      const message = /(?:FATAL|ERROR): +.+/.exec(stderr)?.[0].replace(/ +/g, " ") ?? "no message";
      const abortedBy = aborted ? message : null;
      const cutOff = code === 2 && abortedBy !== null && options.allowAbortedClients === true;
      if (code !== 0 && !cutOff) return reject(new Error(`pgbench exited ${code}: ${stderr.slice(-2000)}`));
      resolve({
        transactions: Number(/number of transactions actually processed: (\d+)/.exec(stdout)?.[1] ?? 0),
        tps: Number(/tps = ([\d.]+)/.exec(stdout)?.[1] ?? 0),
        stdout,
        abortedBy: code === 0 ? null : abortedBy,
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
