import { type ChildProcess, spawn } from "node:child_process";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";

const BIN = resolve(fileURLToPath(import.meta.url), "..", "..", "..", "bin", "diffrelay.js");

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface DiffrelayProcess {
  pid: number;
  /** Signals the process by pid (default SIGKILL: the crash fault tests need). Returns false if it had exited. */
  kill(signal?: NodeJS.Signals): boolean;
  exited: Promise<ExitInfo>;
  /** stdout and stderr so far, interleaved in arrival order. */
  output(): string;
  /** Resolves with the output once it matches `pattern`; rejects on timeout or exit. */
  waitForOutput(pattern: RegExp, timeoutMs?: number): Promise<string>;
}

const running = new Set<ChildProcess>();
// A test that fails before cleanup must not leave a CLI process behind after the worker exits.
process.once("exit", () => {
  for (const child of running) child.kill("SIGKILL");
});

/**
 * Runs `node bin/diffrelay.js ...args` as a real child process with extra environment variables; inside
 * network namespace `netns` when given (`ip netns exec` execs it: the pid is diffrelay's own).
 */
export function spawnDiffrelay(
  args: string[],
  env: Record<string, string | undefined> = {},
  netns?: string,
): DiffrelayProcess {
  if (netns !== undefined)
    return spawnWatched("ip", ["netns", "exec", netns, process.execPath, BIN, ...args], env);
  return spawnWatched(process.execPath, [BIN, ...args], env);
}

/**
 * Any command run as a watched child: output kept, exit awaited, killed when the worker exits.
 * `signal` replaces the default way of signalling it (a container is signalled through its engine).
 */
export function spawnWatched(
  command: string,
  argv: string[],
  env: Record<string, string | undefined> = {},
  signal?: (signal: NodeJS.Signals) => boolean,
): DiffrelayProcess {
  const child = spawn(command, argv, {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  if (child.pid === undefined) throw new Error(`failed to spawn ${command}`);
  const pid = child.pid;
  running.add(child);
  let buffer = "";
  const listeners = new Set<() => void>();
  const append = (chunk: Buffer) => {
    buffer += chunk.toString("utf8");
    for (const l of listeners) l();
  };
  child.stdout?.on("data", append);
  child.stderr?.on("data", append);
  let done = false;
  const exited = new Promise<ExitInfo>((resolveExit, rejectExit) => {
    child.once("error", rejectExit);
    // "close" fires after the pipes drain, so output() is complete when `exited` resolves.
    child.once("close", (code, signal) => {
      done = true;
      running.delete(child);
      for (const l of listeners) l();
      resolveExit({ code, signal });
    });
  });
  return {
    pid,
    kill(sig: NodeJS.Signals = "SIGKILL") {
      if (done) return false;
      if (signal) return signal(sig);
      try {
        process.kill(pid, sig);
        return true;
      } catch {
        return false;
      }
    },
    exited,
    output: () => buffer,
    waitForOutput(pattern, timeoutMs = 30_000) {
      return new Promise((resolveWait, rejectWait) => {
        const check = () => {
          if (pattern.test(buffer)) {
            cleanup();
            resolveWait(buffer);
          } else if (done) {
            cleanup();
            rejectWait(new Error(`diffrelay exited before printing ${pattern}:\n${buffer}`));
          }
        };
        const timer = setTimeout(() => {
          cleanup();
          rejectWait(new Error(`timed out after ${timeoutMs} ms waiting for ${pattern}:\n${buffer}`));
        }, timeoutMs);
        const cleanup = () => {
          clearTimeout(timer);
          listeners.delete(check);
        };
        listeners.add(check);
        check();
      });
    },
  };
}
