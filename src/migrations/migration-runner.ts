import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type pg from "pg";

/** The repository root, found from this file whether it runs from src/ (tsx) or dist/. */
function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    try {
      readFileSync(join(dir, "package.json"));
      return dir;
    } catch {
      const parent = dirname(dir);
      if (parent === dir)
        throw new Error(`cannot find diffrelay's package.json above ${fileURLToPath(import.meta.url)}`);
      dir = parent;
    }
  }
}

export interface Migration {
  version: string;
  sql: string;
}

/** The versioned SQL files of migrations/<side>, in version order (their file names sort). */
export function loadMigrations(side: "source" | "standby"): Migration[] {
  const dir = join(packageRoot(), "migrations", side);
  return readdirSync(dir)
    .filter((name) => name.endsWith(".sql"))
    .sort()
    .map((name) => ({ version: name.replace(/\.sql$/, ""), sql: readFileSync(join(dir, name), "utf8") }));
}

/**
 * Applies the migrations not yet recorded in diffrelay.schema_migrations, each
 * in its own transaction, under an advisory lock so that two processes
 * starting together do not race. Returns the versions applied now.
 */
export async function runMigrations(client: pg.Client, migrations: Migration[]): Promise<string[]> {
  await client.query("CREATE SCHEMA IF NOT EXISTS diffrelay");
  await client.query(
    "CREATE TABLE IF NOT EXISTS diffrelay.schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())",
  );
  const applied: string[] = [];
  await client.query("SELECT pg_advisory_lock(hashtext('diffrelay.migrations'))");
  try {
    const done = new Set(
      (await client.query<{ version: string }>("SELECT version FROM diffrelay.schema_migrations")).rows.map(
        (r) => r.version,
      ),
    );
    for (const migration of migrations) {
      if (done.has(migration.version)) continue;
      await client.query("BEGIN");
      try {
        await client.query(migration.sql);
        await client.query("INSERT INTO diffrelay.schema_migrations (version) VALUES ($1)", [
          migration.version,
        ]);
        await client.query("COMMIT");
      } catch (err) {
        await client.query("ROLLBACK");
        throw new Error(`migration ${migration.version} failed: ${(err as Error).message}`, { cause: err });
      }
      applied.push(migration.version);
    }
  } finally {
    await client.query("SELECT pg_advisory_unlock(hashtext('diffrelay.migrations'))");
  }
  return applied;
}
