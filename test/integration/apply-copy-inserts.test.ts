// The applier's COPY path for runs of inserts, against a real standby: values that COPY's text
// format must escape, every kind of column the source may send, runs mixing kinds on one key, and a
// COPY that fails midway, which must fall back inside its savepoint and apply each change once.
import pg from "pg";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { createApplyMetrics } from "../../connectors/postgres-standby/apply-metrics.js";
import {
  ApplyError,
  DriftError,
  type SourcePosition,
} from "../../connectors/postgres-standby/drift-error.js";
import { TransactionApplier } from "../../connectors/postgres-standby/transaction-applier.js";
import type { Change, ColumnValue } from "../../src/change/change-model.js";
import { del, failure, ins, SourceRelations, upd } from "../support/applier-changes.js";
import { createTestDatabase, type TestDatabase, testServices } from "../support/services.js";

const position: SourcePosition = {
  commitLsn: 0x2_0000a0n,
  topic: "diffrelay.copy",
  partition: 0,
  offset: "5",
};

let db: TestDatabase;
let client: pg.Client;
const sources = new SourceRelations(5000);
const metrics = createApplyMetrics("copy-inserts-test");
const fallbacks = async () => (await metrics.batchFallbacks.get()).values[0]?.value ?? 0;

function newApplier(options: Partial<ConstructorParameters<typeof TransactionApplier>[0]> = {}) {
  return new TransactionApplier({
    schemas: sources.lookup,
    maxRowsPerStatement: 1000,
    metrics,
    ...options,
  });
}

let applier: TransactionApplier;

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

async function texts(sql: string): Promise<unknown[][]> {
  return (await client.query({ text: sql, rowMode: "array" })).rows;
}

beforeAll(async () => {
  const services = testServices();
  db = await createTestDatabase(services.standbyUrls[0] ?? services.sourceUrl, "copyin");
  client = new pg.Client({ connectionString: db.url });
  await client.connect();
  await client.query("SET TimeZone = 'UTC'");
  applier = newApplier();
  await applier.prepareSession(client);
});

afterAll(async () => {
  await client?.end();
  await db?.drop();
});

describe("applier: runs of inserts go in as one COPY", () => {
  test("text COPY's own characters, NULL against the string \\N, and every kind of column arrive exactly", async () => {
    await client.query(`
      CREATE TYPE tone AS ENUM ('low', 'high');
      CREATE DOMAIN short_code AS text CHECK (length(VALUE) <= 8);
      CREATE TYPE point3 AS (x integer, label text);
      CREATE TABLE every (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, t text, b bytea, j json, jb jsonb, n numeric,
        ts timestamp, tstz timestamptz, arr text[], e tone, dom short_code, c point3, r numrange,
        twice numeric GENERATED ALWAYS AS (n * 2) STORED)`);
    const columns: [string, string][] = [
      ["id", "bigint"],
      ["t", "text"],
      ["b", "bytea"],
      ["j", "json"],
      ["jb", "jsonb"],
      ["n", "numeric"],
      ["ts", "timestamp without time zone"],
      ["tstz", "timestamp with time zone"],
      ["arr", "text[]"],
      ["e", "tone"],
      ["dom", "short_code"],
      ["c", "point3"],
      ["r", "numrange"],
      ["twice", "numeric"],
    ];
    const every = sources.relation("public", "every", columns, ["id"]);
    // Text a COPY line could misread: delimiters, line ends, backslashes, the end marker, the NULL marker.
    const awkward = [
      "tab\there",
      "line\nend\r\nand CR\r",
      "back\\slash \\N \\. \\t",
      "\\.",
      "\\N",
      "",
      "  ",
      "ünï 😀 \u0001 \u007f",
    ];
    const base = (i: number): ColumnValue[] => [
      String(1000 + i),
      awkward[i % awkward.length] as string,
      i % 2 ? "\\x5c0a09ff00" : "\\x",
      '{"k" :\t"v\\n",\n "k": [ ]}',
      '{"a": "\\\\ \\t", "b": null}',
      ["NaN", "Infinity", "-Infinity", "0.000000000000000000001", "-12345678901234567890.5"][i % 5] as string,
      i % 3 ? "2024-02-29 23:59:59.999999" : "infinity",
      i % 3 ? "1999-12-31 23:00:00.000001+00" : "-infinity",
      '{"tab\there",NULL,"\\\\","",NULL}',
      i % 2 ? "high" : "low",
      i % 2 ? "abc" : null,
      '(7,"a\\\\b\tc")',
      "(1.5,2.25]",
      "999",
    ];
    const rows = Array.from({ length: 24 }, (_, i) => base(i));
    rows.push(columns.map((_, i) => (i === 0 ? "2000" : null)));
    const before = await fallbacks();
    await apply(rows.map((values) => ins(every, values)));
    expect(await fallbacks()).toBe(before);
    const stored = await texts(
      `SELECT ${columns
        .slice(0, -1)
        .map(([name]) => `${name}::text`)
        .join(", ")}, twice::text FROM every ORDER BY id`,
    );
    // The standby computes the generated column itself; compare it with PostgreSQL's own arithmetic.
    const computed = await texts("SELECT (n * 2)::text FROM every ORDER BY id");
    expect(stored.map((row) => row.slice(0, -1))).toEqual(rows.map((values) => values.slice(0, -1)));
    expect(stored.map((row) => row.at(-1))).toEqual(computed.map((row) => row[0]));
    // The NULL row stays NULL; the string "\N" does not become one.
    expect(stored.filter((row) => row[1] === "\\N")).toHaveLength(3);
    expect(
      stored
        .at(-1)
        ?.slice(1, -1)
        .every((v) => v === null),
    ).toBe(true);
  });

  test("a run that inserts, updates, deletes and re-inserts one key ends as the source ended", async () => {
    await client.query("CREATE TABLE churn (id integer PRIMARY KEY, v text NOT NULL)");
    const churn = sources.relation(
      "public",
      "churn",
      [
        ["id", "integer"],
        ["v", "text"],
      ],
      ["id"],
    );
    const changes: Change[] = [
      ins(churn, ["1", "a"]),
      ins(churn, ["2", "b"]),
      upd(churn, ["1"], [1], ["a2"]),
      del(churn, ["1"]),
      ins(churn, ["1", "again"]),
      ins(churn, ["3", "c"]),
      upd(churn, ["1"], [1], ["again2"]),
      upd(churn, ["3"], [1], ["c2"]),
      del(churn, ["2"]),
      ins(churn, ["2", "b\tnew"]),
    ];
    const before = await fallbacks();
    await apply(changes);
    expect(await fallbacks()).toBe(before);
    expect(await texts("SELECT id, v FROM churn ORDER BY id")).toEqual([
      [1, "again2"],
      [2, "b\tnew"],
      [3, "c2"],
    ]);
  });

  test("a COPY that fails midway falls back inside its savepoint: drift names the key, and nothing is applied twice", async () => {
    await client.query("CREATE TABLE dup (id integer PRIMARY KEY, v text)");
    await client.query("INSERT INTO dup VALUES (600, 'already here')");
    const dup = sources.relation(
      "public",
      "dup",
      [
        ["id", "integer"],
        ["v", "text"],
      ],
      ["id"],
    );
    await apply([ins(dup, ["1", "before the run"])]);
    const run = Array.from({ length: 1000 }, (_, i) => ins(dup, [String(i + 100), `row ${i + 100}`]));
    const changes = [upd(dup, ["1"], [1], ["updated first"]), ...run];

    const before = await fallbacks();
    const stopped = await failure(apply(changes));
    expect(stopped).toBeInstanceOf(DriftError);
    expect(stopped).toMatchObject({
      reason: "row-exists",
      change: "insert",
      table: "dup",
      key: { id: "600" },
    });
    expect(stopped).toMatchObject({ changeIndex: 501, commitLsn: "0/20000A0", offset: "5" });
    expect(await fallbacks()).toBe(before + 1);
    // The transaction is atomic: the update before the COPY and the rows before 600 are gone with it.
    expect(await texts("SELECT id, v FROM dup ORDER BY id")).toEqual([
      [1, "before the run"],
      [600, "already here"],
    ]);

    const logged: DriftError[] = [];
    const lenient = newApplier({ onDrift: "log", onDriftLogged: (drift) => logged.push(drift) });
    await lenient.prepareSession(client);
    await apply(changes, lenient);
    expect(logged.map((d) => [d.reason, d.key])).toEqual([["row-exists", { id: "600" }]]);
    const counts = await texts(
      "SELECT count(*)::int, count(DISTINCT id)::int, min(id), max(id) FROM dup WHERE id >= 100",
    );
    expect(counts).toEqual([[1000, 1000, 100, 1099]]);
    expect(await texts("SELECT v FROM dup WHERE id IN (1, 600) ORDER BY id")).toEqual([
      ["updated first"],
      ["already here"],
    ]);
  });

  test("a value the standby refuses in a COPY is reported as the change that carries it", async () => {
    await client.query(
      "CREATE DOMAIN small_int AS integer CHECK (VALUE < 100); CREATE TABLE strict (id integer PRIMARY KEY, n small_int)",
    );
    const strict = sources.relation(
      "public",
      "strict",
      [
        ["id", "integer"],
        ["n", "small_int"],
      ],
      ["id"],
    );
    const changes = Array.from({ length: 50 }, (_, i) => ins(strict, [String(i), i === 30 ? "100" : "1"]));
    const refused = await failure(apply(changes));
    expect(refused).toBeInstanceOf(ApplyError);
    expect(String((refused as Error).message)).toMatch(/change #30 key \(id\)=\("30"\)/);
    expect(refused).toMatchObject({ table: "strict", code: "23514" });
    expect(await texts("SELECT count(*)::int FROM strict")).toEqual([[0]]);
  });
});
