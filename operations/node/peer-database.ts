/**
 * How a node reaches another node's database. The cluster topic carries each
 * node's database address without user and password (Kafka holds no database
 * secret); a node that must connect to a peer's database (a rejoining old
 * primary, to the new primary's) does so with the peer credentials it is
 * configured with (--peer-user, --peer-password), else with the user and
 * password of its own database URL: one role for every member, as Patroni's
 * rewind user is.
 */

export interface PeerCredentials {
  user: string | undefined;
  password: string | undefined;
}

/** The URL without user and password, as a node reports it. */
export function databaseAddress(url: string): string {
  const parsed = new URL(url);
  parsed.username = "";
  parsed.password = "";
  return parsed.toString();
}

/** A peer's reported address with the peer credentials, each defaulting to that of this node's own database URL. */
export function peerDatabaseUrl(address: string, ownUrl: string, credentials: PeerCredentials): string {
  const own = new URL(ownUrl);
  const peer = new URL(address);
  peer.username = credentials.user === undefined ? own.username : encodeURIComponent(credentials.user);
  peer.password =
    credentials.password === undefined ? own.password : encodeURIComponent(credentials.password);
  return peer.toString();
}
