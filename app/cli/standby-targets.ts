import type pg from "pg";
import type { DiffrelayConfig } from "../../src/config/config-schema.js";
import { postgresClientConfig } from "../../src/config/postgres-connection.js";

/**
 * The standbys a command looks at: --standby-url (named by --standby-name) and
 * every name=url of --standbys. The TLS section of `standby` applies to all.
 */
export function standbyTargets(config: DiffrelayConfig): { name: string; config: pg.ClientConfig }[] {
  const targets: { name: string; config: pg.ClientConfig }[] = [];
  if (config.standby?.url) {
    targets.push({
      name: config.standby.name ?? "standby",
      config: postgresClientConfig(config.standby.url, config.standby.tls),
    });
  }
  for (const entry of config.standbys) {
    const at = entry.indexOf("=");
    const name = entry.slice(0, at);
    if (targets.some((t) => t.name === name)) continue;
    targets.push({ name, config: postgresClientConfig(entry.slice(at + 1), config.standby?.tls) });
  }
  return targets;
}
