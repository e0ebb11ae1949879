// A pipelined run's text-array parameters against a real server: every element comes back from
// unnest exactly as sent, whatever characters it holds, and NULL stays apart from the text "NULL".
// Batched UPDATEs and DELETEs carry their keys and values this way.
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runPipelined } from "../../src/sql/pipelined-query.js";
import { createTestDatabase, type TestDatabase, testServices } from "../support/services.js";

let db: TestDatabase;
let client: pg.Client;

beforeAll(async () => {
  const services = testServices();
  db = await createTestDatabase(services.standbyUrls[0] ?? services.sourceUrl, "pipelined_query");
  client = new pg.Client({ connectionString: db.url });
  await client.connect();
  await client.query("CREATE TABLE echo (n int, value text)");
});

afterAll(async () => {
  await client?.end();
  await db?.drop();
});

describe("pipelined text arrays", () => {
  it("carries every element exactly, quotes, backslashes, braces and NULL included", async () => {
    const values: (string | null)[] = [
      "plain",
      "",
      null,
      "NULL",
      'a "quoted" word',
      "back\\slash",
      '\\"',
      "\\\\",
      "{braces},commas",
      " spaces ",
      "tab\tnew\nline",
      "ünïcödé €",
      "ends with \\",
    ];
    const numbers = values.map((_, i) => String(i));
    const outcome = await runPipelined(client, [
      {
        text: "INSERT INTO echo SELECT n::int, v FROM ROWS FROM (unnest($1::text[]), unnest($2::text[])) AS u(n, v)",
        values: [numbers, values],
      },
    ]);
    expect(outcome).toEqual({ rowCounts: [values.length], error: null });
    const { rows } = await client.query<{ value: string | null }>("SELECT value FROM echo ORDER BY n");
    expect(rows.map((row) => row.value)).toEqual(values);
  });
});
