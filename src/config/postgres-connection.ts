import { readFileSync } from "node:fs";
import type pg from "pg";

export interface PostgresTls {
  caFile?: string | undefined;
  insecure: boolean;
}

/**
 * A pg client configuration from a URL (which may carry sslmode) and the
 * optional TLS section, where a CA file turns on verified TLS.
 */
export function postgresClientConfig(url: string, tls?: PostgresTls): pg.ClientConfig {
  const config: pg.ClientConfig = { connectionString: url, application_name: "diffrelay" };
  if (tls?.caFile || tls?.insecure) {
    config.ssl = {
      rejectUnauthorized: !tls.insecure,
      ...(tls.caFile ? { ca: readFileSync(tls.caFile, "utf8") } : {}),
    };
  }
  return config;
}
