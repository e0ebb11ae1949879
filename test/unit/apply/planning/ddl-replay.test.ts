import { describe, expect, test } from "vitest";
import { ddlReplay } from "../../../../connectors/postgres-standby/planning/ddl-replay.js";

describe("ddlReplay", () => {
  test.each([
    ["ALTER TABLE t ADD COLUMN c int", { kind: "in-group", sql: "ALTER TABLE t ADD COLUMN c int" }],
    [
      "alter type mood add value 'x' after 'y'",
      { kind: "commit-after", sql: "alter type mood add value 'x' after 'y'" },
    ],
    ["CREATE INDEX CONCURRENTLY i ON t (c)", { kind: "in-group", sql: "CREATE INDEX  i ON t (c)" }],
    ["create unique index concurrently on t (c)", { kind: "in-group", sql: "create unique index  on t (c)" }],
    [
      "/* why */ CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (c)",
      { kind: "in-group", sql: "/* why */ CREATE INDEX  IF NOT EXISTS i ON t (c)" },
    ],
    [
      "DROP INDEX CONCURRENTLY s.i",
      { kind: "alone", sql: "DROP INDEX CONCURRENTLY IF EXISTS s.i", detach: null },
    ],
    [
      "DROP INDEX CONCURRENTLY IF EXISTS i",
      { kind: "alone", sql: "DROP INDEX CONCURRENTLY IF EXISTS i", detach: null },
    ],
    ["REINDEX INDEX CONCURRENTLY i", { kind: "alone", sql: "REINDEX INDEX CONCURRENTLY i", detach: null }],
    [
      'ALTER TABLE ONLY "My"."Parent" DETACH PARTITION s.p CONCURRENTLY;',
      {
        kind: "alone",
        sql: 'ALTER TABLE ONLY "My"."Parent" DETACH PARTITION s.p CONCURRENTLY;',
        detach: { parent: '"My"."Parent"', partition: "s.p" },
      },
    ],
    ["ALTER TABLE p DETACH PARTITION c", { kind: "in-group", sql: "ALTER TABLE p DETACH PARTITION c" }],
    // A query string with more than one statement is replayed whole, as it ran on the source.
    [
      "CREATE INDEX CONCURRENTLY i ON t (c); SELECT 1",
      { kind: "in-group", sql: "CREATE INDEX CONCURRENTLY i ON t (c); SELECT 1" },
    ],
  ])("%s", (command, expected) => {
    expect(ddlReplay(command)).toEqual(expected);
  });
});
