/**
 * How a node reaches another node's database. The cluster topic carries each
 * node's database address without user and password (Kafka holds no database
 * secret); a node that must connect to a peer's database (a rejoining old
 * primary, to the new primary's) does so as the user of its own database URL.
 */

/** The URL without user and password, as a node reports it. */
export function databaseAddress(url: string): string {
  const parsed = new URL(url);
  parsed.username = "";
  parsed.password = "";
  return parsed.toString();
}

/** A peer's reported address with the user and password of this node's own database URL. */
export function withOwnCredentials(address: string, ownUrl: string): string {
  const own = new URL(ownUrl);
  const peer = new URL(address);
  peer.username = own.username;
  peer.password = own.password;
  return peer.toString();
}
