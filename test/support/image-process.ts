// Runs diffrelay from its image, with host networking: every connection stays on 127.0.0.1 as the local
// stack's are, and the process inside is observed as the spawned CLI is (output, exit, signals).
import { spawnSync } from "node:child_process";
import { type DiffrelayProcess, spawnWatched } from "./child-process.js";
import { dockerAnswers, obtainImage } from "./docker-engine.js";
import { uniqueName } from "./services.js";

/** The image under test: DIFFRELAY_IMAGE, set by `npm run test:containers`. */
export function diffrelayImage(): string {
  const image = process.env.DIFFRELAY_IMAGE;
  if (!image) throw new Error("DIFFRELAY_IMAGE is not set: run these tests with `npm run test:containers`");
  return image;
}

/** Fails in one line when there is no engine or no image, saying how to get both. */
export async function requireImage(): Promise<string> {
  const image = diffrelayImage();
  if (!(await dockerAnswers())) {
    throw new Error(
      `no Docker engine answers at ${process.env.DOCKER_HOST ?? "/var/run/docker.sock"}: \`npm run test:containers\` starts one (installing Debian's docker.io) and builds ${image}`,
    );
  }
  const got = await obtainImage(image);
  if (!got.ok)
    throw new Error(`the Docker engine has no ${image} (${got.reason}): \`npm run images -- up\` builds it`);
  return image;
}

export interface ImageProcess extends DiffrelayProcess {
  /** The container's name, for `docker exec`, `docker stop` and `docker inspect`. */
  container: string;
}

/** `docker <args>`, synchronously: its stdout, or an error with its stderr. */
export function docker(args: string[]): string {
  const r = spawnSync("docker", args, { encoding: "utf8", timeout: 60_000 });
  if (r.status !== 0)
    throw new Error(`docker ${args.join(" ")} failed (exit ${r.status}): ${r.stderr.trim()}`);
  return r.stdout;
}

/** `docker run --rm --network host IMAGE ...args`; signals reach the process inside through the engine. */
export function runImage(args: string[], options: { entrypoint?: string } = {}): ImageProcess {
  const container = uniqueName("diffrelay");
  const entrypoint = options.entrypoint ? ["--entrypoint", options.entrypoint] : [];
  const proc = spawnWatched(
    "docker",
    ["run", "--rm", "--name", container, "--network", "host", ...entrypoint, diffrelayImage(), ...args],
    {},
    (signal) =>
      spawnSync("docker", ["kill", "--signal", signal, container], { timeout: 30_000 }).status === 0,
  );
  return { ...proc, container };
}
