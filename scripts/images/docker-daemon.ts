import { spawn } from "node:child_process";
import { closeSync, existsSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { ensureCommands } from "../stack/debian-packages.js";
import { isAlive, processesMentioning, run, sleep, tail, terminate } from "../stack/processes.js";

/**
 * A Docker engine of our own, on a private socket: never the default /var/run/docker.sock, which would make
 * every other test run on this machine pick testcontainers. Its data root outlives it, so images built by
 * one run are there for the next.
 */
export interface DockerDaemon {
  dir: string;
  /** unix:///…/docker.sock, for DOCKER_HOST. */
  host: string;
  /** Whether this call started it (and so should stop it). */
  startedHere: boolean;
}

/** DIFFRELAY_DOCKER_DIR, else one folder in /tmp (short: a unix socket's path has at most 107 bytes). */
export function daemonDir(): string {
  return process.env.DIFFRELAY_DOCKER_DIR ?? "/tmp/diffrelay-docker";
}

const paths = (dir: string) => ({
  socket: join(dir, "docker.sock"),
  pidFile: join(dir, "docker.pid"),
  log: join(dir, "dockerd.log"),
});

export function daemonHost(dir = daemonDir()): string {
  return `unix://${paths(dir).socket}`;
}

/** The environment that points the docker CLI (and testcontainers) at this engine. */
export function daemonEnv(dir = daemonDir()): NodeJS.ProcessEnv {
  return { ...process.env, DOCKER_HOST: daemonHost(dir), DOCKER_BUILDKIT: "0" };
}

function daemonPid(dir: string): number | undefined {
  const { pidFile } = paths(dir);
  if (!existsSync(pidFile)) return undefined;
  const pid = Number(readFileSync(pidFile, "utf8").trim());
  return Number.isInteger(pid) && isAlive(pid) ? pid : undefined;
}

function pings(socketPath: string): Promise<boolean> {
  return new Promise((resolve) => {
    const req = request({ socketPath, path: "/_ping", timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode === 200);
    });
    req.on("timeout", () => req.destroy());
    req.on("error", () => resolve(false));
    req.end();
  });
}

/** Starts dockerd on the private socket (installing Debian's docker.io first when it is missing), or reuses it. */
export async function startDaemon(log: (m: string) => void, dir = daemonDir()): Promise<DockerDaemon> {
  const p = paths(dir);
  const host = daemonHost(dir);
  if (daemonPid(dir) && (await pings(p.socket))) return { dir, host, startedHere: false };
  await ensureCommands(
    [
      { command: "dockerd", debianPackage: "docker.io" },
      { command: "docker", debianPackage: "docker.io" },
    ],
    log,
  );
  mkdirSync(dir, { recursive: true });
  const out = openSync(p.log, "a");
  const child = spawn(
    "dockerd",
    ["-H", host, "--pidfile", p.pidFile, "--data-root", join(dir, "root"), "--exec-root", join(dir, "exec")],
    { detached: true, stdio: ["ignore", out, out] },
  );
  closeSync(out);
  child.unref();
  const deadline = Date.now() + 60_000;
  while (!(await pings(p.socket))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      if (child.pid) await terminate(child.pid, 5_000);
      throw new Error(`dockerd did not answer on ${p.socket} within 60 s; its log:\n${tail(p.log)}`);
    }
    await sleep(200);
  }
  log(`dockerd ${child.pid} answers on ${host}`);
  return { dir, host, startedHere: true };
}

/** Ids of every container the engine has, running or not. */
async function containerIds(dir: string): Promise<string[]> {
  const { stdout } = await run("docker", ["ps", "-aq"], { env: daemonEnv(dir) });
  return stdout.split("\n").filter(Boolean);
}

/** Removes every container of this engine (it is ours alone), then stops dockerd. */
export async function stopDaemon(log: (m: string) => void, dir = daemonDir()): Promise<void> {
  const pid = daemonPid(dir);
  if (!pid) return;
  if (await pings(paths(dir).socket)) {
    const removed = await removeContainers(dir);
    if (removed) log(`removed ${removed} container(s)`);
  }
  await terminate(pid, 30_000);
  // Its containerd and any container shim name the exec root; they end after dockerd does.
  const execRoot = join(dir, "exec");
  const deadline = Date.now() + 30_000;
  while (processesMentioning(execRoot).length > 0) {
    if (Date.now() > deadline) {
      const left = processesMentioning(execRoot).map((p) => `${p.pid} ${p.cmdline}`);
      throw new Error(
        `dockerd ${pid} stopped, but these processes of its engine still run:\n${left.join("\n")}`,
      );
    }
    await sleep(200);
  }
  log(`dockerd ${pid} and its containerd stopped`);
}

/** Removes every container, leaving the engine running (between test runs). */
export async function removeContainers(dir = daemonDir()): Promise<number> {
  const ids = await containerIds(dir);
  if (ids.length) await run("docker", ["rm", "-f", ...ids], { env: daemonEnv(dir) });
  return ids.length;
}
