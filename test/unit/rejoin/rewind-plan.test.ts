import { describe, expect, it } from "vitest";
import { UNCHANGED_TOAST } from "../../../connectors/postgres-source/index.js";
import { rewindBlockers, rewindStatements } from "../../../operations/rejoin/rewind-plan.js";
import type { StreamTable, StreamTransaction } from "../../../operations/rejoin/unpublished-transactions.js";

const accounts: StreamTable = {
  qualified: '"public"."accounts"',
  name: "public.accounts",
  relkind: "r",
  columns: [
    { name: "id", typeName: "bigint" },
    { name: "note", typeName: "text" },
  ],
  keyColumns: [0],
  hasPrimaryKey: true,
};
const tags: StreamTable = {
  ...accounts,
  qualified: '"public"."tags"',
  name: "public.tags",
  keyColumns: [0, 1],
  hasPrimaryKey: false,
};

const tx = (
  commitLsn: bigint,
  changes: StreamTransaction["changes"],
  extra: Partial<StreamTransaction> = {},
) =>
  ({
    commitLsn,
    commitTimeMicros: 0n,
    xid: 1,
    changes,
    truncated: [],
    ddl: [],
    ...extra,
  }) as StreamTransaction;

describe("rewind plan", () => {
  it("undoes the last change first: insert deleted, update's row deleted and old row put back, delete put back", () => {
    const statements = rewindStatements([
      tx(0x100n, [{ op: "insert", table: accounts, newRow: ["1", "a"] }]),
      tx(0x200n, [
        {
          op: "update",
          table: accounts,
          oldRow: ["1", "a"],
          oldIsWholeRow: true,
          newRow: ["2", UNCHANGED_TOAST],
        },
        { op: "delete", table: tags, oldRow: ["x", null], oldIsWholeRow: true },
      ]),
    ]);
    expect(statements.map((s) => [s.sql, s.params])).toEqual([
      [
        'INSERT INTO "public"."tags" ("id", "note") OVERRIDING SYSTEM VALUE VALUES ($1::bigint, $2::text)',
        ["x", null],
      ],
      ['DELETE FROM ONLY "public"."accounts" WHERE "id" = $1::bigint', ["2"]],
      [
        'INSERT INTO "public"."accounts" ("id", "note") OVERRIDING SYSTEM VALUE VALUES ($1::bigint, $2::text)',
        ["1", "a"],
      ],
      ['DELETE FROM ONLY "public"."accounts" WHERE "id" = $1::bigint', ["1"]],
    ]);
    expect(statements[1]?.describes).toBe('commit 0/200: public.accounts {"id":"2"}');
  });

  it("deletes one of equal rows of a table without a key, compared as text", () => {
    const [statement] = rewindStatements([tx(0x100n, [{ op: "insert", table: tags, newRow: ["x", null] }])]);
    expect(statement?.sql).toBe(
      'DELETE FROM ONLY "public"."tags" WHERE ctid = (SELECT ctid FROM ONLY "public"."tags" WHERE "id"::pg_catalog.text IS NOT DISTINCT FROM $1::pg_catalog.text AND "note"::pg_catalog.text IS NOT DISTINCT FROM $2::pg_catalog.text LIMIT 1)',
    );
  });

  it("names what cannot be undone: DDL, TRUNCATE, old rows missing under DEFAULT identity", () => {
    expect(
      rewindBlockers([
        tx(0x100n, [{ op: "delete", table: accounts, oldRow: ["1", null], oldIsWholeRow: false }], {
          ddl: ["ALTER TABLE accounts ADD COLUMN x int"],
          truncated: ["public.tags"],
        }),
      ]),
    ).toEqual([
      "commit 0/100 changed the schema (ALTER TABLE accounts ADD COLUMN x int): a schema change cannot be undone row by row (the re-seed copies the rows; the change itself stays on the old primary: undo it by hand)",
      "commit 0/100 truncated public.tags: the rows it removed are not in the WAL",
      "commit 0/100 deleted rows of public.accounts, whose REPLICA IDENTITY is not FULL: their old rows are not in the WAL",
    ]);
    expect(rewindBlockers([tx(0x100n, [{ op: "insert", table: accounts, newRow: ["1", "a"] }])])).toEqual([]);
  });
});
