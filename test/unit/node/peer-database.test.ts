import { describe, expect, it } from "vitest";
import { databaseAddress, peerDatabaseUrl } from "../../../operations/node/peer-database.js";

describe("a node's database address, as its report publishes it", () => {
  it("is host, port and database only: no password, from the user info or the query string, nor any other parameter", () => {
    expect(databaseAddress("postgres://app:pw@db-a:5433/shop?password=s3cret&sslmode=require")).toBe(
      "postgres://db-a:5433/shop",
    );
    expect(databaseAddress("postgres://db-a/shop?user=app&password=s3cret")).toBe("postgres://db-a/shop");
    expect(databaseAddress("postgresql://db-a:5432/shop?%70assword=s3cret")).toBe(
      "postgres://db-a:5432/shop",
    );
  });

  it("takes host and port as pg does: query parameters win over the URL's", () => {
    expect(databaseAddress("postgres://ignored:1/shop?host=db-b&port=6000&password=x")).toBe(
      "postgres://db-b:6000/shop",
    );
  });

  it("keeps IPv6 hosts, socket directories and database names exact", () => {
    expect(databaseAddress("postgres://u:p@[::1]:5432/db")).toBe("postgres://[::1]:5432/db");
    expect(databaseAddress("postgres://u:p@%2Fvar%2Frun%2Fpostgresql/db")).toBe(
      "postgres://%2Fvar%2Frun%2Fpostgresql/db",
    );
    expect(databaseAddress("postgres://u:p@h/my%20db")).toBe("postgres://h/my%20db");
  });
});

describe("the URL a node reaches a peer's database with", () => {
  const own = "postgres://app:own%40pw@db-a:5432/shop?sslmode=require&connect_timeout=5";

  it("is the peer's address with this node's credentials and connection parameters", () => {
    const url = new URL(
      peerDatabaseUrl("postgres://db-b:5433/shop", own, { user: undefined, password: undefined }),
    );
    expect([url.hostname, url.port, url.pathname]).toEqual(["db-b", "5433", "/shop"]);
    expect([decodeURIComponent(url.username), decodeURIComponent(url.password)]).toEqual(["app", "own@pw"]);
    expect(Object.fromEntries(url.searchParams)).toEqual({ sslmode: "require", connect_timeout: "5" });
  });

  it("takes this node's user and password from the query string too, and the peer credentials over both", () => {
    const ownQuery = "postgres://db-a/shop?user=app&password=q%26pw&sslmode=require";
    const url = new URL(
      peerDatabaseUrl("postgres://db-b/shop", ownQuery, { user: undefined, password: undefined }),
    );
    expect([decodeURIComponent(url.username), decodeURIComponent(url.password)]).toEqual(["app", "q&pw"]);
    expect(Object.fromEntries(url.searchParams)).toEqual({ sslmode: "require" });
    const peer = new URL(
      peerDatabaseUrl("postgres://db-b/shop", ownQuery, { user: "rewind", password: "r:w@" }),
    );
    expect([decodeURIComponent(peer.username), decodeURIComponent(peer.password)]).toEqual([
      "rewind",
      "r:w@",
    ]);
  });

  it("reads an older node's whole URL as pg does, and takes no credentials or parameters from it", () => {
    const url = new URL(
      peerDatabaseUrl("postgres://db-b:5433/shop?password=theirs&host=db-c&sslmode=disable", own, {
        user: undefined,
        password: undefined,
      }),
    );
    expect([url.hostname, url.port, decodeURIComponent(url.password)]).toEqual(["db-c", "5433", "own@pw"]);
    expect(Object.fromEntries(url.searchParams)).toEqual({ sslmode: "require", connect_timeout: "5" });
  });
});
