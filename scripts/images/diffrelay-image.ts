import { readFileSync } from "node:fs";
import { join } from "node:path";
import { run } from "../stack/processes.js";
import { REPO_ROOT } from "../stack/stack-state.js";
import { daemonEnv } from "./docker-daemon.js";
import type { LocalBases } from "./local-bases.js";

/** diffrelay:<version from package.json>: the tag CI builds and the container tests run. */
export function diffrelayImageTag(): string {
  const { version } = JSON.parse(readFileSync(join(REPO_ROOT, "package.json"), "utf8")) as {
    version: string;
  };
  return `diffrelay:${version}`;
}

/** The image's size as the engine reports it (uncompressed, all layers), in bytes. */
export async function imageSize(image: string, dir: string): Promise<number> {
  const { stdout } = await run("docker", ["image", "inspect", "-f", "{{.Size}}", image], {
    env: daemonEnv(dir),
  });
  return Number(stdout.trim());
}

/** Builds the repository's Dockerfile on the given bases; host networking so its `npm ci` reaches the registry. */
export async function buildDiffrelayImage(
  bases: LocalBases,
  log: (m: string) => void,
  dir: string,
): Promise<{ tag: string; seconds: number; bytes: number }> {
  const tag = diffrelayImageTag();
  const t0 = Date.now();
  await run(
    "docker",
    [
      "build",
      "--network",
      "host",
      "--build-arg",
      `BUILD_IMAGE=${bases.build}`,
      "--build-arg",
      `RUNTIME_IMAGE=${bases.runtime}`,
      "--tag",
      tag,
      ".",
    ],
    { cwd: REPO_ROOT, env: daemonEnv(dir), timeoutMs: 20 * 60_000 },
  );
  const seconds = Math.round((Date.now() - t0) / 1000);
  const bytes = await imageSize(tag, dir);
  log(`${tag} built in ${seconds} s: ${(bytes / 1e6).toFixed(0)} MB`);
  return { tag, seconds, bytes };
}
