import { ConfigError } from "../../src/config/config-error.js";
import type { DiffrelayConfig } from "../../src/config/config-schema.js";
import { redact } from "../../src/observability/redact.js";

/**
 * The source database whose topic a command uses: named by the source URL, or
 * else by the standby URL (a standby database normally has the source's name).
 * An explicit --topic makes this irrelevant.
 */
export function topicDatabase(config: DiffrelayConfig): string {
  const url = config.source?.url ?? config.standby?.url;
  if (!url) {
    if (config.topic) return "";
    throw new ConfigError(
      "config: topic is unknown: set --topic, or --source-url / --standby-url to derive it",
    );
  }
  const name = decodeURIComponent(new URL(url).pathname.replace(/^\//, ""));
  if (!name) throw new ConfigError(`config: ${redact(url)} names no database`);
  return name;
}
