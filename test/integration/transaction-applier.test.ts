import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createApplyMetrics } from "../../connectors/postgres-standby/apply-metrics.js";
import {
  ApplyError,
  DriftError,
  SchemaDriftError,
  type SourcePosition,
} from "../../connectors/postgres-standby/drift-error.js";
import { TransactionApplier } from "../../connectors/postgres-standby/transaction-applier.js";
import type { Change, ColumnValue } from "../../src/change/change-model.js";
import { del, failure, ins, SourceRelations, upd } from "../support/applier-changes.js";
import { createTestDatabase, type TestDatabase, testServices } from "../support/services.js";

const position: SourcePosition = {
  commitLsn: 0x1_6b3748n,
  topic: "diffrelay.test",
  partition: 0,
  offset: "17",
};

let db: TestDatabase;
let client: pg.Client;
const sources = new SourceRelations(1000);

function newApplier(options: Partial<ConstructorParameters<typeof TransactionApplier>[0]> = {}) {
  return new TransactionApplier({
    schemas: sources.lookup,
    maxRowsPerStatement: 2,
    metrics: createApplyMetrics("transaction-applier-test"),
    ...options,
  });
}

let applier: TransactionApplier;
const sharedMetrics = createApplyMetrics("transaction-applier-test");
const fallbackCount = async () => (await sharedMetrics.batchFallbacks.get()).values[0]?.value ?? 0;

/** The caller's side: one standby transaction per call. */
async function apply(changes: Change[], using: TransactionApplier = applier): Promise<void> {
  await client.query("BEGIN");
  try {
    await using.applyChanges(client, changes, position);
    await client.query("COMMIT");
  } catch (err) {
    await client.query("ROLLBACK");
    throw err;
  }
}

async function rows(sql: string): Promise<Record<string, unknown>[]> {
  return (await client.query(sql)).rows;
}

beforeAll(async () => {
  const services = testServices();
  db = await createTestDatabase(services.standbyUrls[0] ?? services.sourceUrl, "apply");
  client = new pg.Client({ connectionString: db.url });
  await client.connect();
  // Output of timestamptz depends on the session's zone; the source's text was written in UTC.
  await client.query("SET TimeZone = 'UTC'");
  applier = newApplier({ metrics: sharedMetrics });
  await applier.prepareSession(client);
});

afterAll(async () => {
  await client?.end();
  await db?.drop();
});

describe("TransactionApplier against PostgreSQL", () => {
  test("every type round-trips through its text representation", async () => {
    await client.query(`
      CREATE TYPE mood AS ENUM ('sad', 'happy');
      CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
      CREATE TYPE pair AS (a integer, b text, c json);
      CREATE TABLE wide (
        id int8 PRIMARY KEY, n numeric, nan numeric, ts timestamp, tstz timestamptz, d date, b bytea,
        j json, jb jsonb, t text, arr text[], arr2 int[][], e mood, dom posint, r int4range, c pair, nul text)`);
    const columns: [string, string][] = [
      ["id", "bigint"],
      ["n", "numeric"],
      ["nan", "numeric"],
      ["ts", "timestamp without time zone"],
      ["tstz", "timestamp with time zone"],
      ["d", "date"],
      ["b", "bytea"],
      ["j", "json"],
      ["jb", "jsonb"],
      ["t", "text"],
      ["arr", "text[]"],
      ["arr2", "integer[]"],
      ["e", "mood"],
      ["dom", "posint"],
      ["r", "int4range"],
      ["c", "pair"],
      ["nul", "text"],
    ];
    const wide = sources.relation("public", "wide", columns, ["id"]);
    const first: ColumnValue[] = [
      "9223372036854775807",
      "1234567890123456789012345678901234567890.0123456789",
      "NaN",
      "infinity",
      "2024-02-29 12:34:56.123456+00",
      "0044-03-15 BC",
      "\\x00ff10",
      '{"a":1,  "a" : 2,\n "b":[ ]}',
      '{"a": null, "b": [1, 2.50]}',
      "emoji 😀, quote \" ' and backslash \\",
      '{NULL,"a \\"quoted\\"","b,c","NULL",""}',
      "{{1,2},{3,NULL}}",
      "happy",
      "42",
      "[1,10)",
      '(1,"x y",)',
      null,
    ];
    const second = [...first];
    second[0] = "-9223372036854775808";
    second[3] = "-infinity";
    second[4] = "-infinity";
    await apply([ins(wide, first), ins(wide, second)]);
    const texts = await rows(
      `SELECT ${columns.map(([name]) => `${name}::text`).join(", ")} FROM wide ORDER BY id DESC`,
    );
    expect(texts.map((row) => Object.values(row))).toEqual([first, second]);

    // A batched update of two rows, then a folded one (same row twice: later values win).
    await apply([
      upd(wide, ["9223372036854775807"], [7, 9], ['{"x" :  1}', "changed"]),
      upd(wide, ["-9223372036854775808"], [7, 9], ["[1, 2]", "other"]),
      upd(wide, ["9223372036854775807"], [9, 12], ["changed again", "sad"]),
    ]);
    expect(await rows("SELECT j::text, t, e::text FROM wide ORDER BY id DESC")).toEqual([
      { j: '{"x" :  1}', t: "changed again", e: "sad" },
      { j: "[1, 2]", t: "other", e: "happy" },
    ]);
  });

  test("batched insert, update and delete affect exactly the planned rows", async () => {
    await client.query("CREATE TABLE kv (id integer PRIMARY KEY, v text, w text)");
    const kv = sources.relation(
      "public",
      "kv",
      [
        ["id", "integer"],
        ["v", "text"],
        ["w", "text"],
      ],
      ["id"],
    );
    const fallbacks = await fallbackCount();
    await apply([1, 2, 3, 4, 5].map((id) => ins(kv, [String(id), `v${id}`, null])));
    await apply([
      upd(kv, ["1"], [1], ["a"]),
      upd(kv, ["2"], [2], ["b"]),
      upd(kv, ["1"], [2], ["c"]),
      upd(kv, ["3"], [1, 2], ["d", "e"]),
      del(kv, ["4"]),
      del(kv, ["5"]),
    ]);
    expect(await rows("SELECT id, v, w FROM kv ORDER BY id")).toEqual([
      { id: 1, v: "a", w: "c" },
      { id: 2, v: "v2", w: "b" },
      { id: 3, v: "d", w: "e" },
    ]);
    expect(await fallbackCount()).toBe(fallbacks);
  });

  test("a UNIQUE value swapped between rows applies through the change-by-change fallback", async () => {
    await client.query("CREATE TABLE swap (id integer PRIMARY KEY, code text NOT NULL UNIQUE)");
    await client.query("INSERT INTO swap VALUES (1, 'a'), (2, 'b')");
    const swap = sources.relation(
      "public",
      "swap",
      [
        ["id", "integer"],
        ["code", "text"],
      ],
      ["id"],
    );
    const fallbacks = await fallbackCount();
    await apply([upd(swap, ["1"], [1], ["tmp"]), upd(swap, ["2"], [1], ["a"]), upd(swap, ["1"], [1], ["b"])]);
    expect(await rows("SELECT id, code FROM swap ORDER BY id")).toEqual([
      { id: 1, code: "b" },
      { id: 2, code: "a" },
    ]);
    expect(await fallbackCount()).toBe(fallbacks + 1);

    const metrics = createApplyMetrics("standby-under-test");
    const metered = newApplier({ metrics });
    await metered.prepareSession(client);
    const counted = () => metrics.registry.getSingleMetricAsString("diffrelay_apply_batch_fallbacks_total");
    await apply([upd(swap, ["1"], [1], ["c"]), upd(swap, ["2"], [1], ["d"])], metered);
    expect(await counted()).toContain(
      'diffrelay_apply_batch_fallbacks_total{standby="standby-under-test"} 0',
    );
    await apply(
      [upd(swap, ["1"], [1], ["tmp"]), upd(swap, ["2"], [1], ["c"]), upd(swap, ["1"], [1], ["d"])],
      metered,
    );
    expect(await rows("SELECT id, code FROM swap ORDER BY id")).toEqual([
      { id: 1, code: "d" },
      { id: 2, code: "c" },
    ]);
    expect(await counted()).toContain(
      'diffrelay_apply_batch_fallbacks_total{standby="standby-under-test"} 1',
    );
  });

  test("drift raises DriftError naming table, key, commit LSN and offset", async () => {
    await client.query("CREATE TABLE drifty (id integer PRIMARY KEY, v text)");
    await client.query("INSERT INTO drifty VALUES (1, 'one')");
    const drifty = sources.relation(
      "public",
      "drifty",
      [
        ["id", "integer"],
        ["v", "text"],
      ],
      ["id"],
    );

    const missing = await failure(apply([upd(drifty, ["1"], [1], ["x"]), upd(drifty, ["99"], [1], ["y"])]));
    expect(missing).toBeInstanceOf(DriftError);
    expect(missing).toMatchObject({
      reason: "row-missing",
      change: "update",
      schema: "public",
      table: "drifty",
      key: { id: "99" },
      commitLsn: "0/16B3748",
      topic: "diffrelay.test",
      offset: "17",
      changeIndex: 1,
    });
    expect(String(missing)).toContain("0/16B3748");

    const exists = await failure(apply([ins(drifty, ["2", "two"]), ins(drifty, ["1", "again"])]));
    expect(exists).toMatchObject({
      name: "DriftError",
      reason: "row-exists",
      key: { id: "1" },
      changeIndex: 1,
    });
    expect(await rows("SELECT id, v FROM drifty ORDER BY id")).toEqual([{ id: 1, v: "one" }]);

    const single = await failure(apply([del(drifty, ["42"])]));
    expect(single).toMatchObject({ reason: "row-missing", change: "delete", key: { id: "42" } });

    const logged: DriftError[] = [];
    const lenient = newApplier({ onDrift: "log", onDriftLogged: (drift) => logged.push(drift) });
    await lenient.prepareSession(client);
    await apply([ins(drifty, ["1", "again"]), ins(drifty, ["3", "three"]), del(drifty, ["77"])], lenient);
    expect(logged.map((drift) => drift.reason)).toEqual(["row-exists", "row-missing"]);
    expect(await rows("SELECT id, v FROM drifty ORDER BY id")).toEqual([
      { id: 1, v: "one" },
      { id: 3, v: "three" },
    ]);
  });

  test("triggers and foreign-key checks on the standby do not fire", async () => {
    await client.query(`
      CREATE TABLE audit (what text);
      CREATE TABLE parent (id integer PRIMARY KEY);
      CREATE TABLE child (id integer PRIMARY KEY, parent_id integer REFERENCES parent);
      CREATE FUNCTION audit_it() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO audit VALUES (TG_OP); RETURN NEW; END $$;
      CREATE TRIGGER child_audit BEFORE INSERT OR UPDATE ON child FOR EACH ROW EXECUTE FUNCTION audit_it()`);
    const child = sources.relation(
      "public",
      "child",
      [
        ["id", "integer"],
        ["parent_id", "integer"],
      ],
      ["id"],
    );
    await apply([ins(child, ["1", "404"]), upd(child, ["1"], [1], ["405"])]);
    expect(await rows("SELECT id, parent_id FROM child")).toEqual([{ id: 1, parent_id: 405 }]);
    expect(await rows("SELECT * FROM audit")).toEqual([]);
  });

  test("generated columns are computed by the standby, identity ALWAYS accepts the source's value", async () => {
    await client.query(`
      CREATE TABLE gen (id integer PRIMARY KEY, a integer, doubled integer GENERATED ALWAYS AS (a * 2) STORED);
      CREATE TABLE ident (id integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY, v text)`);
    const gen = sources.relation(
      "public",
      "gen",
      [
        ["id", "integer"],
        ["a", "integer"],
        ["doubled", "integer"],
      ],
      ["id"],
    );
    await apply([ins(gen, ["1", "5", "999"]), ins(gen, ["2", "6", "999"])]);
    await apply([upd(gen, ["1"], [1, 2], ["7", "999"])]);
    expect(await rows("SELECT id, a, doubled FROM gen ORDER BY id")).toEqual([
      { id: 1, a: 7, doubled: 14 },
      { id: 2, a: 6, doubled: 12 },
    ]);
    const ident = sources.relation(
      "public",
      "ident",
      [
        ["id", "integer"],
        ["v", "text"],
      ],
      ["id"],
    );
    await apply([ins(ident, ["100", "x"])]);
    await apply([ins(ident, ["101", "y"]), ins(ident, ["102", "z"])]);
    expect(await rows("SELECT id, v FROM ident ORDER BY id")).toEqual([
      { id: 100, v: "x" },
      { id: 101, v: "y" },
      { id: 102, v: "z" },
    ]);
  });

  test("a table without primary key: one change affects exactly one row, matched exactly", async () => {
    await client.query("CREATE TABLE bag (n numeric, j json, p point, note text)");
    await client.query(`INSERT INTO bag VALUES
      (1.0, '{"k": 1}', '(1,2)', NULL), (1.0, '{"k": 1}', '(1,2)', NULL), (1.0, '{"k": 1}', '(1,2)', NULL),
      (1.00, '{"k": 1}', '(1,2)', NULL)`);
    const bag = sources.relation(
      "public",
      "bag",
      [
        ["n", "numeric"],
        ["j", "json"],
        ["p", "point"],
        ["note", "text"],
      ],
      null,
    );
    const row = ["1.0", '{"k": 1}', "(1,2)", null];
    await apply([del(bag, row)]);
    await apply([upd(bag, row, [3], ["touched"])]);
    expect(await rows("SELECT n::text, note FROM bag ORDER BY n::text, note")).toEqual([
      { n: "1.0", note: "touched" },
      { n: "1.0", note: null },
      { n: "1.00", note: null },
    ]);
    await apply([del(bag, ["1.00", '{"k": 1}', "(1,2)", null])]);
    expect(await rows("SELECT n::text FROM bag WHERE n::text = '1.00'")).toEqual([]);
    const gone = await failure(apply([del(bag, ["1.00", '{"k": 1}', "(1,2)", null])]));
    expect(gone).toMatchObject({ name: "DriftError", reason: "row-missing", table: "bag" });
  });

  test("a key change is applied in order, and hostile names are quoted", async () => {
    const schema = 'we"ird; DROP TABLE x; --';
    await client.query(`CREATE SCHEMA "we""ird; DROP TABLE x; --"`);
    await client.query(
      `CREATE TABLE "we""ird; DROP TABLE x; --"."My Table" ("a.b" integer PRIMARY KEY, "Sel; ect" text)`,
    );
    const odd = sources.relation(
      schema,
      "My Table",
      [
        ["a.b", "integer"],
        ["Sel; ect", "text"],
      ],
      ["a.b"],
    );
    await apply([ins(odd, ["1", "x"]), ins(odd, ["2", "y"])]);
    await apply([upd(odd, ["1"], [0], ["3"]), upd(odd, ["2"], [0, 1], ["1", "z"]), del(odd, ["3"])]);
    expect(
      await rows(`SELECT "a.b" AS k, "Sel; ect" AS v FROM "we""ird; DROP TABLE x; --"."My Table"`),
    ).toEqual([{ k: 1, v: "z" }]);
  });

  test("sequences only move forward; TRUNCATE and DDL apply in order with the data", async () => {
    await client.query("CREATE SEQUENCE up; CREATE SEQUENCE down INCREMENT -1 MAXVALUE 0 START 0");
    await apply([
      {
        kind: "sequence",
        sequences: [
          { schema: "public", name: "up", lastValue: "10", isCalled: true },
          { schema: "public", name: "down", lastValue: "-10", isCalled: false },
        ],
      },
    ]);
    await apply([
      {
        kind: "sequence",
        sequences: [
          { schema: "public", name: "up", lastValue: "5", isCalled: true },
          { schema: "public", name: "down", lastValue: "-3", isCalled: true },
        ],
      },
    ]);
    expect(await rows("SELECT nextval('up') AS up, nextval('down') AS down")).toEqual([
      { up: "11", down: "-10" },
    ]);

    await client.query("CREATE TABLE evolving (id integer PRIMARY KEY)");
    const before = sources.relation("public", "evolving", [["id", "integer"]], ["id"]);
    const after = sources.relation(
      "public",
      "evolving",
      [
        ["id", "integer"],
        ["extra", "text"],
      ],
      ["id"],
    );
    await apply([
      ins(before, ["1"]),
      { kind: "truncate", relations: [before], cascade: false, restartIdentity: false },
      ins(before, ["2"]),
      { kind: "ddl", searchPath: '"$user", public', command: "ALTER TABLE evolving ADD COLUMN extra text" },
      ins(after, ["3", "new"]),
      upd(after, ["2"], [1], ["old"]),
    ]);
    expect(await rows("SELECT id, extra FROM evolving ORDER BY id")).toEqual([
      { id: 2, extra: "old" },
      { id: 3, extra: "new" },
    ]);
  });

  test("a sequence the standby lacks is skipped, reported once, and the others still advance", async () => {
    await client.query("CREATE SEQUENCE present_seq");
    const missing: string[] = [];
    const tolerant = newApplier({ onSequenceMissing: (name) => missing.push(name) });
    await tolerant.prepareSession(client);
    const positions = (value: string): Change => ({
      kind: "sequence",
      sequences: [
        { schema: "public", name: "absent_seq", lastValue: value, isCalled: true },
        { schema: "public", name: "present_seq", lastValue: value, isCalled: true },
      ],
    });
    await apply([positions("7")], tolerant);
    await apply([positions("9")], tolerant);
    expect(await rows("SELECT last_value::text AS v FROM present_seq")).toEqual([{ v: "9" }]);
    expect(missing).toEqual(['"public"."absent_seq"']);

    // Created later (by DDL replay or by hand), it advances from then on.
    await apply(
      [{ kind: "ddl", searchPath: "public", command: "CREATE SEQUENCE absent_seq" }, positions("12")],
      tolerant,
    );
    expect(await rows("SELECT last_value::text AS v FROM absent_seq")).toEqual([{ v: "12" }]);
    expect(missing).toHaveLength(1);
  });

  test("values and definitions the standby rejects surface as errors naming table, column and position", async () => {
    await client.query("CREATE TABLE strict (id integer PRIMARY KEY, n integer NOT NULL, s varchar(3))");
    const strict = sources.relation(
      "public",
      "strict",
      [
        ["id", "integer"],
        ["n", "integer"],
        ["s", "character varying(3)"],
      ],
      ["id"],
    );
    const badValue = await failure(apply([ins(strict, ["1", "1", "ok"]), ins(strict, ["2", "abc", "ok"])]));
    expect(badValue).toBeInstanceOf(ApplyError);
    expect(badValue).toMatchObject({ code: "22P02", table: "strict", commitLsn: "0/16B3748", offset: "17" });
    expect(String(badValue)).toContain('change #1 key (id)=("2")');

    const tooLong = await failure(apply([ins(strict, ["3", "1", "long"])]));
    expect(tooLong).toMatchObject({ name: "ApplyError", code: "22001", table: "strict" });

    const notNull = await failure(apply([ins(strict, ["4", null, "x"])]));
    expect(notNull).toMatchObject({ name: "ApplyError", code: "23502", table: "strict", column: "n" });

    const wider = sources.relation(
      "public",
      "strict",
      [
        ["id", "integer"],
        ["n", "integer"],
        ["s", "character varying(3)"],
        ["gone", "text"],
      ],
      ["id"],
    );
    const lacking = await failure(apply([ins(wider, ["5", "1", "x", "y"])]));
    expect(lacking).toBeInstanceOf(SchemaDriftError);
    expect(lacking).toMatchObject({ table: "strict", column: "gone", position });

    const nowhere = sources.relation("public", "no_such_table", [["id", "integer"]], ["id"]);
    expect(await failure(apply([ins(nowhere, ["1"])]))).toMatchObject({
      name: "SchemaDriftError",
      table: "no_such_table",
      column: null,
    });
    expect(await rows("SELECT count(*)::int AS n FROM strict")).toEqual([{ n: 0 }]);
  });

  test("a socket that fails under a statement (EPIPE: the standby went away) is the connection's failure, not a refused change", async () => {
    await client.query("CREATE TABLE cut_short (id integer PRIMARY KEY, v text)");
    const table = sources.relation(
      "public",
      "cut_short",
      [
        ["id", "integer"],
        ["v", "text"],
      ],
      ["id"],
    );
    // One insert goes as a statement, two as a COPY: each path meets the socket's failure.
    const groups = [[ins(table, ["1", "a"])], [ins(table, ["2", "b"]), ins(table, ["3", "c"])]];
    for (const changes of groups) {
      const own = new pg.Client({ connectionString: db.url });
      own.on("error", () => undefined);
      await own.connect();
      const ownApplier = newApplier();
      await ownApplier.prepareSession(own);
      await own.query("BEGIN");
      // Node's error for a write to a socket the server closed: its code is five capitals, like a SQLSTATE.
      const epipe = Object.assign(new Error("write EPIPE"), { code: "EPIPE", errno: -32, syscall: "write" });
      const stream = (own as unknown as { connection: { stream: import("node:net").Socket } }).connection
        .stream;
      const write = stream.write.bind(stream) as (...args: unknown[]) => boolean;
      // Cut once the row statement is on its way (the table's definition is read before it).
      stream.write = ((...args: unknown[]) => {
        const chunk = args[0];
        const text =
          typeof chunk === "string" ? chunk : Buffer.isBuffer(chunk) ? chunk.toString("latin1") : "";
        if (/INSERT INTO|COPY /.test(text)) process.nextTick(() => stream.destroy(epipe));
        return write(...args);
      }) as typeof stream.write;
      const err = await failure(ownApplier.applyChanges(own, changes, position));
      expect(err, String(err)).not.toBeInstanceOf(ApplyError);
      expect(err).toMatchObject({ code: "EPIPE" });
      await own.end().catch(() => undefined);
    }
    expect(await rows("SELECT count(*)::int AS n FROM cut_short")).toEqual([{ n: 0 }]);
  });
});
