import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

/** Where debootstrap gets Debian from: the mirror and release this machine's apt already uses. */
export interface DebianSource {
  mirror: string;
  suite: string;
}

function codename(): string {
  const osRelease = existsSync("/etc/os-release") ? readFileSync("/etc/os-release", "utf8") : "";
  const match = /^VERSION_CODENAME=(\S+)$/m.exec(osRelease);
  if (!match?.[1])
    throw new Error("no VERSION_CODENAME in /etc/os-release: the local images need a Debian host");
  return match[1];
}

/** Every "URI suite" pair of apt's sources, one-line (sources.list) and deb822 (*.sources) alike. */
function aptSources(): { uri: string; suites: string[] }[] {
  const found: { uri: string; suites: string[] }[] = [];
  const dir = "/etc/apt/sources.list.d";
  const files = [
    "/etc/apt/sources.list",
    ...(existsSync(dir) ? readdirSync(dir).map((f) => join(dir, f)) : []),
  ];
  for (const file of files.filter((f) => existsSync(f))) {
    const text = readFileSync(file, "utf8");
    for (const line of text.split("\n")) {
      const oneLine = /^\s*deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)/.exec(line);
      if (oneLine?.[1] && oneLine[2]) found.push({ uri: oneLine[1], suites: [oneLine[2]] });
    }
    for (const stanza of text.split(/\n\s*\n/)) {
      const uris = /^URIs:\s*(.+)$/m.exec(stanza)?.[1]?.trim().split(/\s+/) ?? [];
      const suites = /^Suites:\s*(.+)$/m.exec(stanza)?.[1]?.trim().split(/\s+/) ?? [];
      const types = /^Types:\s*(.+)$/m.exec(stanza)?.[1] ?? "deb";
      if (types.split(/\s+/).includes("deb")) for (const uri of uris) found.push({ uri, suites });
    }
  }
  return found;
}

/** DIFFRELAY_DEBIAN_MIRROR, else the apt source that serves this machine's release itself. */
export function debianSource(): DebianSource {
  const suite = codename();
  const mirror =
    process.env.DIFFRELAY_DEBIAN_MIRROR ??
    aptSources()
      .find((s) => s.suites.includes(suite))
      ?.uri.replace(/\/$/, "");
  if (!mirror) {
    throw new Error(
      `no apt source serves ${suite} on this machine: set DIFFRELAY_DEBIAN_MIRROR to a Debian mirror's URL`,
    );
  }
  return { mirror, suite };
}
