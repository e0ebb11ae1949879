import { readFileSync } from "node:fs";
import type { ConnectionOptions } from "node:tls";
import pg from "pg";
import { closeQuietly } from "../errors/close-quietly.js";

export interface PostgresTls {
  caFile?: string | undefined;
  insecure: boolean;
}

/** URL parameters through which pg-connection-string would build its own `ssl` object. */
const URL_TLS_PARAMS = ["ssl", "sslmode", "sslrootcert", "sslcert", "sslkey", "uselibpqcompat"];

/**
 * A pg client configuration from a URL (which may carry sslmode) and the
 * optional TLS section, where a CA file turns on verified TLS.
 *
 * pg parses the connection string last and lets the `ssl` it derives from any
 * sslmode/sslrootcert replace the one given beside it, so with
 * `?sslmode=verify-full` in the URL a configured CA file used to be dropped
 * silently (and the server certificate checked against the system CAs). When
 * the TLS section is set, the TLS parameters are therefore taken out of the URL
 * and folded into one `ssl` object: the CA file wins over `sslrootcert`,
 * `sslcert`/`sslkey` (client certificates) are kept, `sslmode=verify-ca` keeps
 * skipping the host-name check and `sslmode=no-verify` (or `insecure`) turns
 * verification off. With a CA file, TLS is always used, whatever sslmode says.
 */
export function postgresClientConfig(url: string, tls?: PostgresTls): pg.ClientConfig {
  const config: pg.ClientConfig = { connectionString: url, application_name: "diffrelay" };
  if (!tls?.caFile && !tls?.insecure) return config;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    // Not a URL pg could parse either: let pg report it, with the TLS section as given.
    config.ssl = tlsOptions(tls, null);
    return config;
  }
  config.ssl = tlsOptions(tls, parsed.searchParams);
  for (const name of URL_TLS_PARAMS) parsed.searchParams.delete(name);
  config.connectionString = parsed.toString();
  return config;
}

/**
 * The same configuration under this application_name, which wins over one in
 * the URL: the capture's name is what synchronous_standby_names must match.
 */
export function withApplicationName(config: pg.ClientConfig, name: string): pg.ClientConfig {
  if (typeof config.connectionString !== "string") return { ...config, application_name: name };
  let url: URL;
  try {
    url = new URL(config.connectionString);
  } catch {
    return { ...config, application_name: name };
  }
  url.searchParams.delete("application_name");
  return { ...config, connectionString: url.toString(), application_name: name };
}

function tlsOptions(tls: PostgresTls, params: URLSearchParams | null): ConnectionOptions {
  const mode = params?.get("sslmode");
  const ssl: ConnectionOptions = { rejectUnauthorized: !tls.insecure && mode !== "no-verify" };
  const rootCert = tls.caFile ?? params?.get("sslrootcert");
  if (rootCert) ssl.ca = readFileSync(rootCert, "utf8");
  const cert = params?.get("sslcert");
  const key = params?.get("sslkey");
  if (cert) ssl.cert = readFileSync(cert, "utf8");
  if (key) ssl.key = readFileSync(key, "utf8");
  if (mode === "verify-ca") ssl.checkServerIdentity = () => undefined;
  return ssl;
}

/**
 * Runs `fn` on a fresh connection and closes it. An idle client's socket error
 * is dropped because the query that meets the broken connection rejects with it.
 */
export async function withPgClient<T>(
  config: pg.ClientConfig,
  fn: (client: pg.Client) => Promise<T>,
): Promise<T> {
  const client = new pg.Client(config);
  client.on("error", () => undefined);
  await client.connect();
  try {
    return await fn(client);
  } finally {
    // The work is done (or failed with its own error); a failing close loses nothing.
    await closeQuietly(client.end());
  }
}
