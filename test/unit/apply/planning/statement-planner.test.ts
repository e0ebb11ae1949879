import { describe, expect, test } from "vitest";
import { SchemaDriftError } from "../../../../connectors/postgres-standby/drift-error.js";
import {
  planChangeByChange,
  planStatements,
} from "../../../../connectors/postgres-standby/planning/statement-planner.js";
import { TableMappings } from "../../../../connectors/postgres-standby/planning/table-mapping.js";
import { foldUpdates } from "../../../../connectors/postgres-standby/planning/update-folding.js";
import type { UpdateChange } from "../../../../src/change/change-model.js";
import { quoteIdent, quoteQualified } from "../../../../src/sql/quote.js";
import { insert, remove, resolver, table, update } from "../fixtures.js";

const T = "pg_catalog.text";
const accounts = table(
  1,
  "public",
  "accounts",
  [
    { name: "id", type: "bigint" },
    { name: "name", type: "text" },
    { name: "balance", type: "numeric" },
  ],
  ["id"],
);
const resolve = resolver(accounts);
const options = { maxRowsPerStatement: 100, mappings: new TableMappings() };

describe("quoting", () => {
  test("every identifier is quoted, embedded quotes doubled", () => {
    expect(quoteIdent("plain")).toBe('"plain"');
    expect(quoteIdent('we"ird; DROP TABLE x; --')).toBe('"we""ird; DROP TABLE x; --"');
    expect(quoteQualified("My Schema", "a.b")).toBe('"My Schema"."a.b"');
    expect(() => quoteIdent("")).toThrow();
    expect(() => quoteIdent("a\u0000b")).toThrow(/NUL/);
  });

  test("hostile table and column names stay identifiers in every statement", () => {
    const odd = table(
      2,
      'we"ird; DROP TABLE x; --',
      "My Table",
      [
        { name: "a.b", type: "integer" },
        { name: 'c"; DELETE FROM t; --', type: "text" },
      ],
      ["a.b"],
    );
    const plan = planStatements(
      [
        insert(odd.ref, ["1", "x"]),
        insert(odd.ref, ["2", "y"]),
        update(odd.ref, ["1"], [1], ["z"]),
        update(odd.ref, ["2"], [1], ["w"]),
        remove(odd.ref, ["1"]),
      ],
      resolver(odd),
      options,
    );
    expect(plan.map((s) => s.sql)).toEqual([
      `COPY "we""ird; DROP TABLE x; --"."My Table" ("a.b", "c""; DELETE FROM t; --") FROM STDIN`,
      `UPDATE "we""ird; DROP TABLE x; --"."My Table" AS t SET "c""; DELETE FROM t; --" = u.v1::text FROM ROWS FROM (pg_catalog.unnest($1::${T}[]), pg_catalog.unnest($2::${T}[])) AS u(k1, v1) WHERE t."a.b" = u.k1::integer`,
      `DELETE FROM "we""ird; DROP TABLE x; --"."My Table" AS t WHERE t."a.b" = $1::${T}::integer`,
    ]);
  });
});

describe("batched statements", () => {
  test("consecutive inserts become one COPY of text rows, NULL as \\N and COPY's own characters escaped", () => {
    const plan = planStatements(
      [
        insert(accounts.ref, ["1", "ann", "10.50"]),
        insert(accounts.ref, ["2", null, "NaN"]),
        insert(accounts.ref, ["3", "a\\b\tc\nd\re \\N", "0"]),
      ],
      resolve,
      options,
    );
    expect(plan).toEqual([
      {
        sql: `COPY "public"."accounts" ("id", "name", "balance") FROM STDIN`,
        params: [],
        copyData: Buffer.from("1\tann\t10.50\n2\t\\N\tNaN\n3\ta\\\\b\\tc\\nd\\re \\\\N\t0\n"),
        expectedRows: 3,
        description: {
          kind: "insert",
          tables: [{ schema: "public", table: "accounts" }],
          keyColumns: ["id"],
          keys: [["1"], ["2"], ["3"]],
          changeIndices: [0, 1, 2],
        },
        batched: true,
        group: 0,
        prepare: false,
      },
    ]);
  });

  test("runs are split at maxRowsPerStatement; a lone change gets a single-row statement", () => {
    const changes = ["1", "2", "3"].map((id) => insert(accounts.ref, [id, "n", "0"]));
    const plan = planStatements(changes, resolve, { ...options, maxRowsPerStatement: 2 });
    expect(plan.map((s) => [s.expectedRows, s.batched, s.group, s.description.changeIndices])).toEqual([
      [2, true, 0, [0, 1]],
      [1, false, 1, [2]],
    ]);
    expect(plan[1]?.sql).toBe(
      `INSERT INTO "public"."accounts" ("id", "name", "balance") VALUES ($1::${T}::bigint, $2::${T}::text, $3::${T}::numeric) ON CONFLICT ("id") DO NOTHING`,
    );
    expect(plan[1]?.params).toEqual(["3", "n", "0"]);
  });

  test("updates with the same changed columns share an UPDATE … FROM keyed on the primary key", () => {
    const plan = planStatements(
      [update(accounts.ref, ["1"], [2], ["5"]), update(accounts.ref, ["2"], [2], ["6"])],
      resolve,
      options,
    );
    expect(plan.map(({ sql, params, expectedRows }) => ({ sql, params, expectedRows }))).toEqual([
      {
        sql: `UPDATE "public"."accounts" AS t SET "balance" = u.v1::numeric FROM ROWS FROM (pg_catalog.unnest($1::${T}[]), pg_catalog.unnest($2::${T}[])) AS u(k1, v1) WHERE t."id" = u.k1::bigint`,
        params: [
          ["1", "2"],
          ["5", "6"],
        ],
        expectedRows: 2,
      },
    ]);
  });

  test("deletes by a multi-column key share one DELETE … USING", () => {
    const lines = table(
      3,
      "s",
      "lines",
      [
        { name: "order_id", type: "bigint" },
        { name: "line", type: "integer" },
        { name: "qty", type: "integer" },
      ],
      ["order_id", "line"],
    );
    const plan = planStatements(
      [remove(lines.ref, ["7", "1"]), remove(lines.ref, ["7", "2"])],
      resolver(lines),
      options,
    );
    expect(plan.map(({ sql, params, expectedRows }) => ({ sql, params, expectedRows }))).toEqual([
      {
        sql: `DELETE FROM "s"."lines" AS t USING ROWS FROM (pg_catalog.unnest($1::${T}[]), pg_catalog.unnest($2::${T}[])) AS u(k1, k2) WHERE t."order_id" = u.k1::bigint AND t."line" = u.k2::integer`,
        params: [
          ["7", "7"],
          ["1", "2"],
        ],
        expectedRows: 2,
      },
    ]);
  });
});

describe("folding", () => {
  test("updates of one row merge their columns, later values winning", () => {
    const changes = [
      { change: update(accounts.ref, ["1"], [1], ["a"]) as UpdateChange, index: 0 },
      { change: update(accounts.ref, ["2"], [2], ["9"]) as UpdateChange, index: 1 },
      { change: update(accounts.ref, ["1"], [1, 2], ["b", "3"]) as UpdateChange, index: 2 },
    ];
    expect(foldUpdates(changes)).toEqual([
      { key: ["1"], columns: [1, 2], values: ["b", "3"], changeIndices: [0, 2] },
      { key: ["2"], columns: [2], values: ["9"], changeIndices: [1] },
    ]);
  });

  test("a folded run groups rows by changed columns; expected rows count distinct keys", () => {
    const plan = planStatements(
      [
        update(accounts.ref, ["1"], [1], ["a"]),
        update(accounts.ref, ["2"], [1], ["b"]),
        update(accounts.ref, ["1"], [2], ["5"]),
        update(accounts.ref, ["3"], [1, 2], ["c", "6"]),
      ],
      resolve,
      options,
    );
    expect(plan.map((s) => [s.params, s.expectedRows, s.group, s.description.changeIndices])).toEqual([
      [
        [
          ["1", "3"],
          ["a", "c"],
          ["5", "6"],
        ],
        2,
        0,
        [0, 2, 3],
      ],
      [[["2"], ["b"]], 1, 0, [1]],
    ]);
    expect(plan.every((s) => s.batched)).toBe(true);
  });

  test("updates of a single row fold into one exact statement, no savepoint needed", () => {
    const plan = planStatements(
      [update(accounts.ref, ["1"], [1], ["a"]), update(accounts.ref, ["1"], [1], ["b"])],
      resolve,
      options,
    );
    expect(plan).toHaveLength(1);
    expect(plan[0]).toMatchObject({
      sql: `UPDATE "public"."accounts" AS t SET "name" = $1::${T}::text WHERE t."id" = $2::${T}::bigint`,
      params: ["b", "1"],
      batched: false,
      description: { changeIndices: [0, 1], keys: [["1"], ["1"]] },
    });
  });

  test("a key change is never folded: it splits the run and runs alone, in order", () => {
    const plan = planStatements(
      [
        update(accounts.ref, ["1"], [1], ["a"]),
        update(accounts.ref, ["1"], [0], ["10"]),
        update(accounts.ref, ["10"], [1], ["b"]),
      ],
      resolve,
      options,
    );
    expect(plan.map((s) => [s.sql, s.params, s.batched])).toEqual([
      [
        `UPDATE "public"."accounts" AS t SET "name" = $1::${T}::text WHERE t."id" = $2::${T}::bigint`,
        ["a", "1"],
        false,
      ],
      [
        `UPDATE "public"."accounts" AS t SET "id" = $1::${T}::bigint WHERE t."id" = $2::${T}::bigint`,
        ["10", "1"],
        false,
      ],
      [
        `UPDATE "public"."accounts" AS t SET "name" = $1::${T}::text WHERE t."id" = $2::${T}::bigint`,
        ["b", "10"],
        false,
      ],
    ]);
  });
});

describe("tables without primary key", () => {
  const bag = table(
    4,
    "public",
    "bag",
    [
      { name: "n", type: "numeric" },
      { name: "j", type: "json", hasEquality: false },
    ],
    null,
  );

  test("each update and delete affects exactly one row, matched in its type and by its text", () => {
    const plan = planStatements(
      [
        remove(bag.ref, ["1.0", '{"a":1}']),
        remove(bag.ref, ["2", null]),
        update(bag.ref, ["3", "[]"], [0], ["4"]),
      ],
      resolver(bag),
      options,
    );
    expect(plan.map((s) => [s.sql, s.params, s.batched, s.expectedRows])).toEqual([
      [
        `WITH victim AS (SELECT t.tableoid, t.ctid FROM "public"."bag" AS t WHERE t."n" = $1::${T}::numeric AND t."n"::${T} = ($1::${T}::numeric)::${T} AND t."j"::${T} = ($2::${T}::json)::${T} LIMIT 1) DELETE FROM "public"."bag" AS t USING victim WHERE t.tableoid = victim.tableoid AND t.ctid = victim.ctid`,
        ["1.0", '{"a":1}'],
        false,
        1,
      ],
      [
        `WITH victim AS (SELECT t.tableoid, t.ctid FROM "public"."bag" AS t WHERE t."n" = $1::${T}::numeric AND t."n"::${T} = ($1::${T}::numeric)::${T} AND t."j" IS NULL LIMIT 1) DELETE FROM "public"."bag" AS t USING victim WHERE t.tableoid = victim.tableoid AND t.ctid = victim.ctid`,
        ["2"],
        false,
        1,
      ],
      [
        `WITH victim AS (SELECT t.tableoid, t.ctid FROM "public"."bag" AS t WHERE t."n" = $1::${T}::numeric AND t."n"::${T} = ($1::${T}::numeric)::${T} AND t."j"::${T} = ($2::${T}::json)::${T} LIMIT 1) UPDATE "public"."bag" AS t SET "n" = $3::${T}::numeric FROM victim WHERE t.tableoid = victim.tableoid AND t.ctid = victim.ctid`,
        ["3", "[]", "4"],
        false,
        1,
      ],
    ]);
  });

  test("inserts still batch", () => {
    const plan = planStatements(
      [insert(bag.ref, ["1", "{}"]), insert(bag.ref, ["1", "{}"])],
      resolver(bag),
      options,
    );
    expect(plan).toHaveLength(1);
    expect(plan[0]).toMatchObject({ batched: true, expectedRows: 2 });
    const single = planChangeByChange([insert(bag.ref, ["1", "{}"])], resolver(bag), options.mappings, 0, 0);
    expect(single[0]?.sql).toBe(
      `INSERT INTO "public"."bag" ("n", "j") VALUES ($1::${T}::numeric, $2::${T}::json)`,
    );
  });
});

describe("standby column properties", () => {
  test("generated columns are never written; identity ALWAYS needs no OVERRIDING clause in COPY", () => {
    const items = table(
      5,
      "public",
      "items",
      [
        { name: "id", type: "integer", identityAlways: true },
        { name: "price", type: "numeric" },
        { name: "total", type: "numeric", generated: true },
      ],
      ["id"],
    );
    const plan = planStatements(
      [
        insert(items.ref, ["1", "2.5", "5.0"]),
        insert(items.ref, ["2", "3", "6"]),
        update(items.ref, ["1"], [1, 2], ["4", "8"]),
        update(items.ref, ["2"], [2], ["9"]),
      ],
      resolver(items),
      options,
    );
    expect(plan.map((s) => [s.sql, s.copyData?.toString() ?? s.params])).toEqual([
      [`COPY "public"."items" ("id", "price") FROM STDIN`, "1\t2.5\n2\t3\n"],
      [
        `UPDATE "public"."items" AS t SET "price" = u.v1::numeric FROM ROWS FROM (pg_catalog.unnest($1::${T}[]), pg_catalog.unnest($2::${T}[])) AS u(k1, v1) WHERE t."id" = u.k1::integer`,
        [["1"], ["4"]],
      ],
      // Only a generated column changed: the row is still rewritten, so it must exist.
      [
        `UPDATE "public"."items" AS t SET "price" = t."price" FROM ROWS FROM (pg_catalog.unnest($1::${T}[])) AS u(k1) WHERE t."id" = u.k1::integer`,
        [["2"]],
      ],
    ]);
  });

  test("rows whose changed columns differ only in generated ones share a statement, each with its own values", () => {
    const items = table(
      7,
      "public",
      "items",
      [
        { name: "id", type: "integer" },
        { name: "price", type: "numeric" },
        { name: "total", type: "numeric", generated: true },
        { name: "note", type: "text" },
      ],
      ["id"],
    );
    const plan = planStatements(
      [
        update(items.ref, ["1"], [1, 2, 3], ["4", "8", "a"]),
        update(items.ref, ["2"], [1, 3], ["5", "b"]),
        update(items.ref, ["3"], [3], ["c"]),
        update(items.ref, ["4"], [1, 2, 3], ["6", "12", "d"]),
      ],
      resolver(items),
      options,
    );
    expect(plan.map((s) => s.params)).toEqual([
      [
        ["1", "2", "4"],
        ["4", "5", "6"],
        ["a", "b", "d"],
      ],
      [["3"], ["c"]],
    ]);
  });

  test("a source column the standby lacks, or a different primary key, is schema drift", () => {
    const drifted = table(6, "public", "drifted", [{ name: "id", type: "integer" }], ["id"]);
    const source = {
      ...drifted.source,
      columns: [...drifted.source.columns, { name: "extra", typeOid: 0, typeName: "text", typeModifier: -1 }],
    };
    const lacking = () =>
      planStatements([insert(drifted.ref, ["1", "x"])], () => ({ source, target: drifted.target }), options);
    expect(lacking).toThrow(SchemaDriftError);
    expect(lacking).toThrow(/"public"."drifted" column "extra"/);
    const otherKey = { ...drifted.target, primaryKey: null };
    expect(() =>
      planStatements(
        [insert(drifted.ref, ["1"])],
        () => ({ source: drifted.source, target: otherKey }),
        options,
      ),
    ).toThrow(/primary key/);
  });
});

describe("identity ALWAYS columns an update gives a value", () => {
  const tagged = table(
    8,
    "public",
    "tagged",
    [
      { name: "code", type: "text" },
      { name: "n", type: "bigint", identityAlways: true },
      { name: "note", type: "text" },
    ],
    ["code"],
  );

  test("move the row, one statement per update, its other columns taken from the deleted row", () => {
    const plan = planStatements(
      [update(tagged.ref, ["a"], [1, 2], ["7", "x"]), update(tagged.ref, ["b"], [1], ["8"])],
      resolver(tagged),
      options,
    );
    expect(plan.map((s) => [s.sql, s.params, s.batched, s.expectedRows])).toEqual([
      [
        `WITH old AS (DELETE FROM "public"."tagged" AS t WHERE t."code" = $1::${T}::text RETURNING t.*) INSERT INTO "public"."tagged" ("code", "n", "note") OVERRIDING SYSTEM VALUE SELECT old."code", $2::${T}::bigint, $3::${T}::text FROM old`,
        ["a", "7", "x"],
        false,
        1,
      ],
      [
        `WITH old AS (DELETE FROM "public"."tagged" AS t WHERE t."code" = $1::${T}::text RETURNING t.*) INSERT INTO "public"."tagged" ("code", "n", "note") OVERRIDING SYSTEM VALUE SELECT old."code", $2::${T}::bigint, old."note" FROM old`,
        ["b", "8"],
        false,
        1,
      ],
    ]);
  });

  test("updates that leave it alone are still batched UPDATEs", () => {
    const plan = planStatements(
      [update(tagged.ref, ["a"], [2], ["x"]), update(tagged.ref, ["b"], [2], ["y"])],
      resolver(tagged),
      options,
    );
    expect(plan.map((s) => [s.batched, s.sql.startsWith("UPDATE")])).toEqual([[true, true]]);
  });
});

describe("TRUNCATE, sequences, DDL", () => {
  test("are planned one statement each, in order, never batched", () => {
    const other = table(7, "s", "other", [{ name: "id", type: "integer" }], ["id"]);
    const plan = planStatements(
      [
        { kind: "truncate", relations: [accounts.ref, other.ref], cascade: true, restartIdentity: true },
        {
          kind: "sequence",
          sequences: [{ schema: "public", name: "My Seq", lastValue: "42", isCalled: true }],
        },
        { kind: "ddl", searchPath: '"$user", public', command: "ALTER TABLE accounts ADD note text" },
      ],
      resolver(accounts, other),
      options,
    );
    expect(plan.map((s) => [s.description.kind, s.batched, s.prepare, s.expectedRows])).toEqual([
      ["truncate", false, false, null],
      ["sequence", false, true, null],
      ["ddl", false, false, null],
    ]);
    expect(plan[0]?.sql).toBe(`TRUNCATE TABLE "public"."accounts", "s"."other" RESTART IDENTITY CASCADE`);
    expect(plan[1]?.sql).toContain(`pg_catalog.setval(p.seqrelid, $1::pg_catalog.int8, $2::pg_catalog.bool)`);
    expect(plan[1]?.sql).toContain(`FROM "public"."My Seq" AS cur`);
    expect(plan[1]?.params).toEqual(["42", "true", '"public"."My Seq"']);
    expect(plan[2]).toMatchObject({
      sql: "ALTER TABLE accounts ADD note text",
      searchPath: '"$user", public',
    });
  });
});
