/**
 * How a node reaches another node's database. The cluster topic carries each
 * node's database address: host, port and database, nothing else (Kafka holds
 * no database secret, and pg takes a password from the URL's query string as
 * well as from its user info). A node that must connect to a peer's database
 * (a rejoining old primary, to the new primary's) does so with the peer
 * credentials it is configured with (--peer-user, --peer-password), else with
 * the user and password of its own database URL, and with its own URL's other
 * connection parameters (sslmode, ...): one role and one way of connecting for
 * every member, as Patroni's rewind user is.
 */

export interface PeerCredentials {
  user: string | undefined;
  password: string | undefined;
}

/** Where a database is, as pg reads a URL: a query parameter wins over the URL's own part. */
interface DatabaseLocation {
  host: string;
  port: string;
  database: string;
}

/** Query parameters that say where the database is or who connects: the address and the credentials carry them. */
const LOCATION_AND_CREDENTIALS = new Set(["host", "port", "user", "password", "database", "dbname"]);

function locationOf(url: URL): DatabaseLocation {
  const query = url.searchParams;
  return {
    host: query.get("host") ?? decodeURIComponent(url.hostname.replace(/^\[(.+)\]$/, "$1")),
    port: query.get("port") ?? url.port,
    database: decodeURI(url.pathname.slice(1)),
  };
}

function credentialsOf(url: URL): { user: string; password: string } {
  return {
    user: url.searchParams.get("user") ?? decodeURIComponent(url.username),
    password: url.searchParams.get("password") ?? decodeURIComponent(url.password),
  };
}

function urlOf(location: DatabaseLocation): URL {
  const { host, port, database } = location;
  // A socket directory is a host pg finds percent-encoded; an IPv6 address goes in brackets.
  const hostPart = host.startsWith("/") ? encodeURIComponent(host) : host.includes(":") ? `[${host}]` : host;
  return new URL(`postgres://${hostPart}${port ? `:${port}` : ""}/${encodeURIComponent(database)}`);
}

/** The address a node reports: host, port and database of the URL, built from its parsed parts. */
export function databaseAddress(url: string): string {
  return urlOf(locationOf(new URL(url))).toString();
}

/**
 * A peer's reported address (only its host, port and database are used) with
 * the peer credentials, each defaulting to that of this node's own database
 * URL, and the other connection parameters of this node's own URL.
 */
export function peerDatabaseUrl(address: string, ownUrl: string, credentials: PeerCredentials): string {
  const own = new URL(ownUrl);
  const ownCredentials = credentialsOf(own);
  const peer = urlOf(locationOf(new URL(address)));
  peer.username = encodeURIComponent(credentials.user ?? ownCredentials.user);
  peer.password = encodeURIComponent(credentials.password ?? ownCredentials.password);
  for (const [name, value] of own.searchParams) {
    if (!LOCATION_AND_CREDENTIALS.has(name)) peer.searchParams.append(name, value);
  }
  return peer.toString();
}
