import { spawn } from "node:child_process";
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
} from "node:fs";
import { dirname, join } from "node:path";
import { commandPath, ensureCommands } from "../stack/debian-packages.js";
import { run } from "../stack/processes.js";
import { debianSource } from "./debian-source.js";
import { daemonEnv } from "./docker-daemon.js";

/**
 * The bases the images are built on when no registry serves the public ones: a Debian minbase of this
 * machine's release (the service stand-ins' base), the same with this machine's Node (so its libc matches)
 * for the Dockerfile's runtime stage, plus npm for its build stage. The Node ones have the `node` user
 * (uid 1000) that node:20-slim has.
 */
export interface LocalBases {
  debian: string;
  runtime: string;
  build: string;
}

const NODE_MAJOR = process.versions.node.split(".")[0] as string;
const LABEL = "diffrelay.node-version";

export function localBaseTags(): LocalBases {
  return {
    debian: `diffrelay-base/debian:${debianSource().suite}`,
    runtime: `diffrelay-base/node:${NODE_MAJOR}-slim`,
    build: `diffrelay-base/node:${NODE_MAJOR}-build`,
  };
}

async function labelOf(image: string, dir: string): Promise<string | undefined> {
  try {
    const { stdout } = await run(
      "docker",
      ["image", "inspect", "-f", `{{index .Config.Labels "${LABEL}"}}`, image],
      {
        env: daemonEnv(dir),
      },
    );
    return stdout.trim();
  } catch {
    return undefined;
  }
}

/** `tar -C rootfs -c . | docker import`, with the settings an image made by a Dockerfile would carry. */
function importRootfs(rootfs: string, tag: string, dir: string, env: string[] = []): Promise<void> {
  const changes = [
    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    ...env.map((e) => `ENV ${e}`),
    `LABEL ${LABEL}=${process.version}`,
    'CMD ["node"]',
  ].flatMap((c) => ["--change", c]);
  return new Promise((resolve, reject) => {
    const tar = spawn("tar", ["-C", rootfs, "--numeric-owner", "-c", "."], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    const imp = spawn("docker", ["import", ...changes, "-", tag], {
      env: daemonEnv(dir),
      stdio: ["pipe", "ignore", "pipe"],
    });
    let err = "";
    imp.stderr.on("data", (c: Buffer) => {
      err += c.toString();
    });
    tar.stdout.pipe(imp.stdin);
    imp.once("close", (code) =>
      code === 0 ? resolve() : reject(new Error(`docker import ${tag} failed (exit ${code}): ${err.trim()}`)),
    );
    tar.once("close", (code) => {
      if (code !== 0) reject(new Error(`tar of ${rootfs} failed (exit ${code})`));
    });
  });
}

/** npm's own folder (the one whose package.json names npm), from the npm on PATH. */
function npmFolder(): string {
  const npm = commandPath("npm");
  if (!npm) throw new Error("npm is not on PATH: the build base copies this machine's npm");
  for (let d = dirname(realpathSync(npm)); d !== dirname(d); d = dirname(d)) {
    const pkg = join(d, "package.json");
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, "utf8")).name === "npm") return d;
  }
  throw new Error(`no npm package folder above ${realpathSync(npm)}`);
}

/**
 * The build stage's `npm ci` must trust the registry as this machine's npm does: a machine behind a
 * TLS-inspecting proxy names that proxy's CA in NODE_EXTRA_CA_CERTS, so the build base gets the same file.
 */
function trustHostCertificates(rootfs: string): string[] {
  const file = process.env.NODE_EXTRA_CA_CERTS;
  if (!file || !existsSync(file)) return [];
  const inImage = "/usr/local/share/diffrelay-build/ca-certificates.crt";
  mkdirSync(dirname(join(rootfs, inImage)), { recursive: true });
  cpSync(file, join(rootfs, inImage));
  return [`NODE_EXTRA_CA_CERTS=${inImage}`];
}

/** Files an image never uses: apt's downloads and lists, documentation, translations, iconv modules. */
const TRIMMED = [
  "var/cache/apt",
  "var/lib/apt/lists",
  "usr/share/doc",
  "usr/share/man",
  "usr/share/info",
  "usr/share/locale",
  "usr/lib/x86_64-linux-gnu/gconv",
];

/** Builds the three bases unless images made from this same Node are there already. */
export async function buildLocalBases(log: (m: string) => void, dir: string): Promise<LocalBases> {
  const tags = localBaseTags();
  const labels = await Promise.all(Object.values(tags).map((t) => labelOf(t, dir)));
  if (labels.every((l) => l === process.version)) {
    log(`${Object.values(tags).join(", ")} (Node ${process.version}) already built`);
    return tags;
  }
  await ensureCommands(
    [
      { command: "debootstrap", debianPackage: "debootstrap" },
      { command: "strip", debianPackage: "binutils" },
    ],
    log,
  );
  const t0 = Date.now();
  const { mirror, suite } = debianSource();
  const rootfs = join(dir, "build", "node-rootfs");
  rmSync(rootfs, { recursive: true, force: true });
  mkdirSync(dirname(rootfs), { recursive: true });
  try {
    log(`debootstrap --variant=minbase ${suite} from ${mirror}`);
    await run("debootstrap", ["--variant=minbase", suite, rootfs, mirror], { timeoutMs: 20 * 60_000 });
    await run("chroot", [rootfs, "groupadd", "--gid", "1000", "node"]);
    await run("chroot", [
      rootfs,
      "useradd",
      "--uid",
      "1000",
      "--gid",
      "node",
      "--create-home",
      "--shell",
      "/bin/bash",
      "node",
    ]);
    for (const path of TRIMMED) {
      rmSync(join(rootfs, path), { recursive: true, force: true });
      mkdirSync(join(rootfs, path), { recursive: true });
    }
    await importRootfs(rootfs, tags.debian, dir);
    const node = join(rootfs, "usr/local/bin/node");
    cpSync(process.execPath, node);
    chmodSync(node, 0o755);
    // Symbols only: the dynamic table native add-ons link against stays.
    await run("strip", ["--strip-all", node]);
    await importRootfs(rootfs, tags.runtime, dir);
    const npmDir = join(rootfs, "usr/local/lib/node_modules/npm");
    cpSync(npmFolder(), npmDir, { recursive: true });
    symlinkSync("../lib/node_modules/npm/bin/npm-cli.js", join(rootfs, "usr/local/bin/npm"));
    symlinkSync("../lib/node_modules/npm/bin/npx-cli.js", join(rootfs, "usr/local/bin/npx"));
    await importRootfs(rootfs, tags.build, dir, trustHostCertificates(rootfs));
  } finally {
    rmSync(rootfs, { recursive: true, force: true });
  }
  log(`${Object.values(tags).join(", ")} built in ${Math.round((Date.now() - t0) / 1000)} s`);
  return tags;
}
