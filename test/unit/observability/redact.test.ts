import { describe, expect, it } from "vitest";
import { redact, redactError } from "../../../src/observability/redact.js";

describe("redact", () => {
  it("masks a URL password that contains @ up to the host, leaking none of it", () => {
    const text = "pg_dump exited with 1: connection to postgres://app:p@ss@w0rd@db.example:5432/app failed";
    const out = redact(text);
    expect(out).toBe("pg_dump exited with 1: connection to postgres://app:****@db.example:5432/app failed");
    for (const piece of ["p@ss", "ss@w0rd", "w0rd"]) expect(out).not.toContain(piece);
  });

  it("masks keyword passwords and JSON secrets, and errors' messages", () => {
    expect(redact("host=db password='a b@c' dbname=app")).toBe("host=db password=**** dbname=app");
    expect(redact('{"saslPassword":"x@y"}')).toBe('{"saslPassword":"****"}');
    expect(redactError(new Error("could not reach postgres://u:s3cr@t@h/db"))).toBe(
      "could not reach postgres://u:****@h/db",
    );
  });

  it("masks a password in a URL's query string (which pg accepts), keeping the other parameters", () => {
    const url = "postgres://app@db:5432/shop?sslmode=require&password=s3cr%26t&connect_timeout=5";
    expect(redactError(new Error(`could not connect to ${url}: timeout`))).toBe(
      "could not connect to postgres://app@db:5432/shop?sslmode=require&password=****&connect_timeout=5: timeout",
    );
    // pg decodes parameter names: an encoded one is the same parameter.
    expect(redact("postgres://db/shop?%70assword=s3cret")).toBe("postgres://db/shop?%70assword=****");
    expect(redact("postgres://db/shop?sslpassword=k3y&x=1")).toBe("postgres://db/shop?sslpassword=****&x=1");
    expect(redact("host=db sslpassword=k3y dbname=app")).toBe("host=db sslpassword=**** dbname=app");
  });
});
