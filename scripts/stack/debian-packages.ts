import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import { isRoot, run } from "./processes.js";

/** A command the stack or the tests run, and the Debian package that provides it. */
export interface NeededCommand {
  command: string;
  debianPackage: string;
}

/** The command's path on PATH, or undefined. */
export function commandPath(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? "").split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, command);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not in this directory: look in the next one.
    }
  }
  return undefined;
}

/** The one line that tells someone without root how to get the missing commands. */
export function missingCommandsMessage(missing: NeededCommand[]): string {
  const commands = missing.map((m) => m.command).join(", ");
  const packages = [...new Set(missing.map((m) => m.debianPackage))].join(" ");
  return `${commands} not installed: run \`apt-get install -y --no-install-recommends ${packages}\` as root (npm test and the stack install it themselves when run as root)`;
}

/**
 * Makes sure every command is on PATH, installing the Debian packages of the
 * missing ones with apt-get when running as root (a fresh machine of the
 * project's kind), so the README's commands need nothing installed by hand.
 * Without root, a missing command is an error saying what to install.
 */
export async function ensureCommands(needed: NeededCommand[], log: (m: string) => void): Promise<void> {
  const missing = needed.filter((n) => commandPath(n.command) === undefined);
  if (missing.length === 0) return;
  if (!isRoot()) throw new Error(missingCommandsMessage(missing));
  const packages = [...new Set(missing.map((m) => m.debianPackage))];
  log(`${missing.map((m) => m.command).join(", ")} not found: installing ${packages.join(" ")} with apt-get`);
  await installDebianPackages(packages);
  const still = missing.filter((n) => commandPath(n.command) === undefined);
  if (still.length > 0)
    throw new Error(`apt-get installed ${packages.join(" ")}, yet ${missingCommandsMessage(still)}`);
}

/** apt-get install, non-interactive. */
export async function installDebianPackages(packages: string[]): Promise<void> {
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  await run("apt-get", ["update", "-qq"], { env, timeoutMs: 10 * 60_000 });
  await run("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...packages], {
    env,
    timeoutMs: 20 * 60_000,
  });
}
