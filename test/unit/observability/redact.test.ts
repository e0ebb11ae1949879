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
});
