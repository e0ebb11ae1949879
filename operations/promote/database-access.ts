import pg from "pg";
import { withLocalCommits } from "../../src/config/standby-session.js";
import { closeQuietly } from "../../src/errors/close-quietly.js";

/**
 * Who may connect to a database and write in it: the levers a role change pulls.
 * Each runs on a neighbour database of the same server (postgres or template1),
 * because PostgreSQL refuses ALLOW_CONNECTIONS for the current database and a
 * fenced database accepts no connection at all.
 */

/** `default_transaction_read_only` for new sessions of the database; existing sessions keep theirs. */
export async function setDatabaseReadOnly(config: pg.ClientConfig, readOnly: boolean): Promise<void> {
  const db = databaseOf(config);
  await onNeighbourDatabase(config, db, (client) =>
    client.query(
      `ALTER DATABASE ${pg.escapeIdentifier(db)} SET default_transaction_read_only = ${readOnly ? "on" : "off"}`,
    ),
  );
}

/** ALLOW_CONNECTIONS of the database: false binds superusers too. */
export async function setDatabaseConnectable(config: pg.ClientConfig, connectable: boolean): Promise<void> {
  const db = databaseOf(config);
  await onNeighbourDatabase(config, db, (client) =>
    client.query(`ALTER DATABASE ${pg.escapeIdentifier(db)} ALLOW_CONNECTIONS ${connectable}`),
  );
}

/**
 * The URL of a session that may write in a database whose new sessions are
 * read-only (a standby's): the applier's and the node's own bookkeeping.
 */
export function writableSessionUrl(url: string): string {
  const parsed = new URL(url);
  const options = parsed.searchParams.get("options");
  parsed.searchParams.set("options", `${options ? `${options} ` : ""}-c default_transaction_read_only=off`);
  return parsed.toString();
}

/** The database a client config names, from its URL. */
export function databaseOf(config: pg.ClientConfig): string {
  return decodeURIComponent(new URL(config.connectionString as string).pathname.slice(1));
}

export const CONNECT_TIMEOUT_MS = 5000;

/** Runs `fn` on another database of the same server (postgres, else template1): ALTER DATABASE of `db` runs there. */
export async function onNeighbourDatabase(
  config: pg.ClientConfig,
  db: string,
  fn: (client: pg.Client) => Promise<unknown>,
): Promise<void> {
  const failures: string[] = [];
  let lastFailure: unknown;
  for (const neighbour of ["postgres", "template1"].filter((name) => name !== db)) {
    const url = new URL(config.connectionString as string);
    url.pathname = `/${encodeURIComponent(neighbour)}`;
    const client = new pg.Client({
      ...withLocalCommits(config),
      connectionString: url.toString(),
      connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    });
    client.on("error", () => undefined);
    try {
      await client.connect();
    } catch (err) {
      failures.push(`${neighbour}: ${(err as Error).message}`);
      lastFailure = err;
      continue;
    }
    try {
      await fn(client);
      return;
    } finally {
      await closeQuietly(client.end());
    }
  }
  throw new Error(
    `no connection to another database of the server of database "${db}" (${failures.join("; ")}): fencing it runs ALTER DATABASE … ALLOW_CONNECTIONS false from there, so the server must be up and the role allowed to connect to postgres or template1`,
    // The last connection's own error: whether the server is down or refused this role (isServerDown).
    { cause: lastFailure },
  );
}
