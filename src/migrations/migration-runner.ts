import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type pg from "pg";
import { DiffrelayError } from "../errors/diffrelay-error.js";

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

export type MigrationSide = "source" | "standby";

export interface Migration {
  /** Recorded in diffrelay.schema_migrations: `<side>/<file name without .sql>`, so a node that is both a source and a standby (after promote) keeps both sets apart. */
  version: string;
  fileName: string;
  sql: string;
  /** Marked `-- diffrelay:ensure`: states configuration-dependent setup idempotently, so it runs at every start. */
  ensure: boolean;
}

const FILE_NAME = /^\d+_[\w-]+\.sql$/;
const ENSURE_MARKER = /^--\s*diffrelay:ensure\s*$/m;
/** Placeholder values land inside $diffrelay$-quoted DO bodies, which this tag would close early. */
const DOLLAR_TAG = "$diffrelay$";

/** The versioned SQL files of migrations/<side> (or `dir`), in version order (their file names sort). */
export function loadMigrations(
  side: MigrationSide,
  dir = join(packageRoot(), "migrations", side),
): Migration[] {
  return readdirSync(dir)
    .filter((name) => FILE_NAME.test(name))
    .sort()
    .map((fileName) => {
      const sql = readFileSync(join(dir, fileName), "utf8");
      return {
        version: `${side}/${fileName.replace(/\.sql$/, "")}`,
        fileName,
        sql,
        ensure: ENSURE_MARKER.test(sql),
      };
    });
}

/** A placeholder a file names but the caller did not give, or a configured name that cannot be spliced in. */
export class MigrationTemplateError extends DiffrelayError {
  override name = "MigrationTemplateError";

  constructor(message: string) {
    super("setup", message);
  }
}

/** Fills `{{name}}` placeholders with values the caller has already quoted for SQL. */
export function fillPlaceholders(migration: Migration, values: ReadonlyMap<string, string>): string {
  return migration.sql.replace(/\{\{(\w+)\}\}/g, (_, key: string) => {
    const value = values.get(key);
    if (value === undefined)
      throw new MigrationTemplateError(`${migration.fileName}: unknown placeholder {{${key}}}`);
    if (value.includes(DOLLAR_TAG))
      throw new MigrationTemplateError(`configured name for {{${key}}} may not contain ${DOLLAR_TAG}`);
    return value;
  });
}

const LOCK = "SELECT pg_catalog.pg_advisory_lock(pg_catalog.hashtext('diffrelay.migrations'))";
const UNLOCK = "SELECT pg_catalog.pg_advisory_unlock(pg_catalog.hashtext('diffrelay.migrations'))";

/**
 * Runs `fn` holding diffrelay's migration lock, so that two processes starting
 * together (two captures, a capture and an applier on a promoted node) do not
 * race. The lock is re-entrant within a session, so runMigrations may run inside.
 */
export async function withMigrationLock<T>(client: pg.ClientBase, fn: () => Promise<T>): Promise<T> {
  await client.query(LOCK);
  try {
    return await fn();
  } finally {
    await client.query(UNLOCK);
  }
}

/**
 * Applies the migrations not yet recorded (and every `ensure` one again), each
 * in its own transaction with its record. Returns the versions recorded now.
 */
export async function runMigrations(
  client: pg.ClientBase,
  migrations: Migration[],
  placeholders: ReadonlyMap<string, string> = new Map(),
): Promise<string[]> {
  return withMigrationLock(client, async () => {
    await client.query("CREATE SCHEMA IF NOT EXISTS diffrelay");
    await client.query(
      "CREATE TABLE IF NOT EXISTS diffrelay.schema_migrations (version text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT pg_catalog.now())",
    );
    const done = new Set(
      (await client.query<{ version: string }>("SELECT version FROM diffrelay.schema_migrations")).rows.map(
        (r) => r.version,
      ),
    );
    const applied: string[] = [];
    for (const migration of migrations) {
      if (done.has(migration.version) && !migration.ensure) continue;
      const sql = fillPlaceholders(migration, placeholders);
      await client.query("BEGIN");
      try {
        await client.query(sql);
        const recorded = await client.query(
          "INSERT INTO diffrelay.schema_migrations (version) VALUES ($1) ON CONFLICT (version) DO NOTHING",
          [migration.version],
        );
        await client.query("COMMIT");
        if (recorded.rowCount === 1) applied.push(migration.version);
      } catch (err) {
        await client.query("ROLLBACK");
        throw err;
      }
    }
    return applied;
  });
}
