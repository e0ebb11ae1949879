import { execFile } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";

export interface RunResult {
  stdout: string;
  stderr: string;
}

/** Runs a command to completion; rejects with its output when it exits non-zero. */
export function run(
  cmd: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    execFile(
      cmd,
      args,
      {
        cwd: opts.cwd,
        env: opts.env ?? process.env,
        timeout: opts.timeoutMs ?? 600_000,
        maxBuffer: 64 << 20,
      },
      (err, stdout, stderr) => {
        if (err) {
          reject(new Error(`${cmd} ${args.join(" ")} failed: ${err.message}\n${stdout}\n${stderr}`.trim()));
        } else {
          resolve({ stdout, stderr });
        }
      },
    );
  });
}

export function isRoot(): boolean {
  return typeof process.getuid === "function" && process.getuid() === 0;
}

/** PostgreSQL refuses to run as root, so as root we drop to the `postgres` OS user for its binaries. */
export function runAsPostgres(
  bin: string,
  args: string[],
  opts: { cwd?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {},
): Promise<RunResult> {
  return isRoot() ? run("runuser", ["-u", "postgres", "--", bin, ...args], opts) : run(bin, args, opts);
}

/** Signal 0 probes existence; EPERM still means the process exists (owned by another user). */
export function isAlive(pid: number | undefined): boolean {
  if (!pid || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
  // A zombie still answers signal 0 but is gone for every practical purpose.
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/**
 * True while the pid exists at all, zombies included. PostgreSQL's own lock-file check counts a zombie
 * postmaster as running, so a restart after SIGKILL must wait until the zombie is reaped.
 */
export function pidExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Thrown by a waitUntil probe when waiting longer cannot help (the process waited for has exited). */
export class PointlessWait extends Error {}

/**
 * Polls `probe` until it returns true or the deadline passes; the last probe error explains a timeout.
 * A PointlessWait from the probe ends the wait at once.
 */
export async function waitUntil(
  what: string,
  timeoutMs: number,
  probe: () => Promise<boolean> | boolean,
  explain: () => string = () => "",
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = "";
  for (;;) {
    try {
      if (await probe()) return;
    } catch (err) {
      if (err instanceof PointlessWait) {
        const extra = explain();
        throw new Error(`gave up waiting for ${what}: ${err.message}${extra ? `\n${extra}` : ""}`);
      }
      lastError = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) {
      const extra = explain();
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${what}${lastError ? ` (last error: ${lastError})` : ""}` +
          (extra ? `\n${extra}` : ""),
      );
    }
    await sleep(200);
  }
}

/** Sends SIGTERM, waits up to `graceMs`, then SIGKILL: the stop path for processes without their own tool. */
export async function terminate(pid: number, graceMs: number): Promise<void> {
  if (!isAlive(pid)) return;
  try {
    process.kill(pid, "SIGTERM");
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return;
    await sleep(100);
  }
  try {
    process.kill(pid, "SIGKILL");
  } catch {
    return;
  }
  await waitUntil(`pid ${pid} to exit after SIGKILL`, 10_000, () => !isAlive(pid));
}

/**
 * After a process is dead, waits (bounded) until it is reaped: a multi-threaded process (the JVM) shows as a
 * zombie leader while its other threads still hold its sockets, so its ports are not yet free.
 */
export async function awaitReaped(pid: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (pidExists(pid) && Date.now() < deadline) await sleep(50);
}

/** Last lines of a log file, for error messages that say why a server did not come up. */
export function tail(path: string, lines = 30): string {
  if (!existsSync(path)) return `(no log at ${path})`;
  const all = readFileSync(path, "utf8").trimEnd().split("\n");
  return `--- last ${Math.min(lines, all.length)} lines of ${path} ---\n${all.slice(-lines).join("\n")}`;
}

/** All descendants of `pid` (from /proc), so callers can check that a stop left nothing behind. */
export function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, "utf8");
      const ppid = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
      const list = children.get(ppid) ?? [];
      list.push(Number(entry));
      children.set(ppid, list);
    } catch {
      // The process exited while we walked /proc.
    }
  }
  const out: number[] = [];
  const queue = [pid];
  while (queue.length) {
    const next = queue.shift() as number;
    for (const c of children.get(next) ?? []) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

/** Processes whose command line mentions `needle` (e.g. a stack's base dir). */
export function processesMentioning(needle: string): { pid: number; cmdline: string }[] {
  const out: { pid: number; cmdline: string }[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0").join(" ").trim();
      if (cmdline.includes(needle) && isAlive(Number(entry))) out.push({ pid: Number(entry), cmdline });
    } catch {
      // Exited meanwhile.
    }
  }
  return out;
}
