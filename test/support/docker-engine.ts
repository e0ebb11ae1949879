import { existsSync } from "node:fs";
import { request } from "node:http";

type Target = { socketPath: string } | { host: string; port: number };

/** Where DOCKER_HOST (or the default socket) points; undefined when nothing is there. */
function engineTarget(): Target | undefined {
  const host = process.env.DOCKER_HOST ?? "unix:///var/run/docker.sock";
  if (host.startsWith("unix://")) {
    const socketPath = host.slice("unix://".length);
    return existsSync(socketPath) ? { socketPath } : undefined;
  }
  if (host.startsWith("tcp://")) {
    const url = new URL(host.replace(/^tcp:/, "http:"));
    return { host: url.hostname, port: Number(url.port || 2375) };
  }
  return undefined;
}

interface EngineAnswer {
  status: number;
  body: string;
}

function call(target: Target, method: string, path: string, timeoutMs: number): Promise<EngineAnswer> {
  return new Promise((resolve, reject) => {
    const req = request({ ...target, path, method, timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        body += chunk;
      });
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      res.on("error", reject);
    });
    req.on("timeout", () =>
      req.destroy(new Error(`the Docker engine did not answer ${method} ${path} within ${timeoutMs} ms`)),
    );
    req.on("error", reject);
    req.end();
  });
}

/**
 * Answers within `timeoutMs` whether a Docker engine responds to /_ping, so test setup can fall back to
 * the local stack at once instead of waiting on testcontainers' own (long) discovery.
 */
export async function dockerAnswers(timeoutMs = 1_500): Promise<boolean> {
  const target = engineTarget();
  if (!target) return false;
  try {
    return (await call(target, "GET", "/_ping", timeoutMs)).status === 200;
  } catch {
    return false;
  }
}

/** The engine's own words for a failed pull: the last `error` of its progress stream, or its message. */
function pullError(answer: EngineAnswer): string | undefined {
  const lines = answer.body.split("\n").filter((l) => l.trim() !== "");
  let error: string | undefined;
  for (const line of lines) {
    try {
      const parsed = JSON.parse(line) as { error?: string; message?: string };
      error = parsed.error ?? (answer.status >= 400 ? parsed.message : undefined) ?? error;
    } catch {
      if (answer.status >= 400) error = line.trim();
    }
  }
  if (answer.status >= 400) return error ?? `HTTP ${answer.status}`;
  return error;
}

/**
 * Makes `image` available to the engine: present already, or pulled now.
 * Returns why not in one line when it cannot be had (e.g. no registry).
 */
export async function obtainImage(image: string): Promise<{ ok: true } | { ok: false; reason: string }> {
  const target = engineTarget();
  if (!target) return { ok: false, reason: "no Docker engine" };
  try {
    if ((await call(target, "GET", `/images/${image}/json`, 10_000)).status === 200) return { ok: true };
    const colon = image.lastIndexOf(":");
    const [name, tag] =
      colon > image.lastIndexOf("/") ? [image.slice(0, colon), image.slice(colon + 1)] : [image, "latest"];
    const query = `fromImage=${encodeURIComponent(name)}&tag=${encodeURIComponent(tag)}`;
    const pulled = await call(target, "POST", `/images/create?${query}`, 30 * 60_000);
    const error = pullError(pulled);
    return error === undefined ? { ok: true } : { ok: false, reason: error.split("\n")[0] as string };
  } catch (err) {
    return { ok: false, reason: (err as Error).message };
  }
}
