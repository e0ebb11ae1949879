import { randomBytes } from "node:crypto";
import pg from "pg";
import { inject } from "vitest";

/** Real services the tests run against, chosen once per run by global-setup.ts. */
export interface TestServices {
  /** A PostgreSQL server with wal_level=logical; tests create their own databases on it. */
  sourceUrl: string;
  standbyUrls: string[];
  kafkaBrokers: string[];
  origin: "env" | "testcontainers" | "stack";
  /** Set when the local stack serves the run: fault tests stop/start its servers through scripts/stack. */
  stack?: { baseDir: string; startedByTests: boolean };
}

declare module "vitest" {
  interface ProvidedContext {
    diffrelayServices: TestServices;
  }
}

export function testServices(): TestServices {
  return inject("diffrelayServices");
}

/** Lowercase, [a-z0-9_], ≤ 63 chars: valid as a database, slot, publication or topic name. */
export function uniqueName(prefix: string): string {
  const clean = prefix
    .toLowerCase()
    .replace(/[^a-z0-9_]/g, "_")
    .slice(0, 40);
  return `${clean}_${Date.now().toString(36)}_${randomBytes(3).toString("hex")}`;
}

/** The same server, another database. */
export function withDatabase(serverUrl: string, database: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${encodeURIComponent(database)}`;
  return url.toString();
}

export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

export function runSql<R extends pg.QueryResultRow = pg.QueryResultRow>(
  url: string,
  sql: string,
  params: unknown[] = [],
): Promise<pg.QueryResult<R>> {
  return withClient(url, (c) => c.query<R>(sql, params));
}

export interface TestDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

const quoteIdent = (name: string) => `"${name.replaceAll('"', '""')}"`;

/**
 * Drops a database after its replication slots: a slot pins the database (DROP DATABASE refuses while one
 * exists), and an active slot must first lose its walsender. WITH (FORCE) ends any other sessions.
 */
export async function dropDatabase(serverUrl: string, name: string): Promise<void> {
  await withClient(serverUrl, async (c) => {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const { rows } = await c.query<{ slot_name: string; active_pid: number | null }>(
        "SELECT slot_name, active_pid FROM pg_replication_slots WHERE database = $1",
        [name],
      );
      if (rows.length === 0) break;
      for (const slot of rows) {
        if (slot.active_pid) {
          await c.query("SELECT pg_terminate_backend($1)", [slot.active_pid]);
          continue;
        }
        // Another session may have dropped or re-acquired it meanwhile; the loop re-reads the catalog.
        await c.query("SELECT pg_drop_replication_slot($1)", [slot.slot_name]).catch(() => undefined);
      }
      if (Date.now() > deadline) {
        throw new Error(
          `replication slots on ${name} still exist after 30 s: ${rows.map((r) => r.slot_name).join(", ")}`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    await c.query(`DROP DATABASE IF EXISTS ${quoteIdent(name)} WITH (FORCE)`);
  });
}

/** A fresh database per test file, so slots, publications and tables never collide between files. */
export async function createTestDatabase(serverUrl: string, prefix: string): Promise<TestDatabase> {
  const name = uniqueName(prefix);
  await runSql(serverUrl, `CREATE DATABASE ${quoteIdent(name)}`);
  return { name, url: withDatabase(serverUrl, name), drop: () => dropDatabase(serverUrl, name) };
}
