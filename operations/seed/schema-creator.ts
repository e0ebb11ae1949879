import { spawn } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { redact } from "../../src/observability/redact.js";
import { quoteIdent, quoteQualified } from "../../src/sql/quote.js";

/**
 * `seed --create-schema`: the missing tables' definitions come from
 * `pg_dump --schema-only` of the source, piped into `psql` on the standby, so
 * every detail (defaults, generated columns, constraints, owned sequences,
 * partition bounds) is PostgreSQL's own rendering. pg_dump must be at least
 * the source's major version; DIFFRELAY_PG_BIN names its directory, else the
 * Debian layout /usr/lib/postgresql/<major>/bin is searched (the source's
 * major first, then newer ones), else PATH.
 */
export function pgBinary(tool: "pg_dump" | "psql", sourceMajor: number): string {
  const fromEnv = process.env.DIFFRELAY_PG_BIN;
  if (fromEnv) return join(fromEnv, tool);
  const root = "/usr/lib/postgresql";
  if (existsSync(root)) {
    const majors = readdirSync(root)
      .map(Number)
      .filter((m) => Number.isInteger(m) && m >= sourceMajor)
      .sort((a, b) => a - b);
    for (const major of majors) {
      const path = join(root, String(major), "bin", tool);
      if (existsSync(path)) return path;
    }
  }
  return tool;
}

function run(command: string, args: string[], input: string | null): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
    let out = "";
    let err = "";
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString("utf8");
    });
    child.stderr.on("data", (c: Buffer) => {
      err += c.toString("utf8");
    });
    child.once("error", reject);
    child.once("close", (code) => {
      if (code === 0) resolve(out);
      else reject(new Error(`${command} exited with ${code}: ${redact(err.trim())}`));
    });
    child.stdin.end(input ?? "");
  });
}

/**
 * Creates `tables` (schema + name, unquoted) on the standby from the source's
 * definitions. The schemas are created first (pg_dump -t leaves them out);
 * types the tables use (enums, domains, extensions) must already exist there.
 */
export async function createTablesFromSource(
  sourceUrl: string,
  standbyUrl: string,
  tables: { schema: string; name: string }[],
  sourceMajor: number,
): Promise<void> {
  if (tables.length === 0) return;
  const args = ["--schema-only", "--no-owner", "--no-privileges", "--no-publications", "--no-subscriptions"];
  // pg_dump's -t takes a pattern: quoting each part makes it match exactly that name.
  for (const t of tables) args.push("-t", quoteQualified(t.schema, t.name));
  args.push("-d", sourceUrl);
  const ddl = await run(pgBinary("pg_dump", sourceMajor), args, null);
  const schemas = [...new Set(tables.map((t) => t.schema))]
    .map((s) => `CREATE SCHEMA IF NOT EXISTS ${quoteIdent(s)};`)
    .join("\n");
  await run(
    pgBinary("psql", sourceMajor),
    ["-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "-d", standbyUrl],
    `${schemas}\n${ddl}`,
  );
}
