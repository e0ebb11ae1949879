import type pg from "pg";
import { DiffrelayError } from "../../src/errors/diffrelay-error.js";
import { loadMigrations, runMigrations, withMigrationLock } from "../../src/migrations/migration-runner.js";
import { quoteIdent, quoteLiteral, quoteQualified } from "../../src/sql/quote.js";
import { resolveCaptureSlot } from "./slot-name.js";
import { assertCapturable, identifySource, type SourceIdentity } from "./source-catalog.js";

export interface SourceMigrationConfig {
  publicationName: string;
  /** Unset: the default for this database (resolveCaptureSlot). */
  slotName: string | undefined;
  /** Tables to publish, "schema.table" or "table" (public); identifiers may be double-quoted. */
  tables?: string[];
  /** Schemas to publish every table of (PostgreSQL 15+). With neither tables nor schemas: all tables. */
  schemas?: string[];
  /** Per table ("schema.table" or "table"): "default" keeps DEFAULT identity when the table has a primary key. */
  identity?: Record<string, "full" | "default">;
  /** Told when an existing slot under the old default name is used. */
  note?: (message: string) => void;
  /** Where the migration files are; defaults to the package's migrations/source. */
  migrationsDir?: string;
}

export interface TableIdentity {
  /** Schema-qualified, quoted as PostgreSQL prints a regclass. */
  name: string;
  identity: "full" | "default";
}

export interface SourceMigrationResult {
  /** Versions recorded in diffrelay.schema_migrations by this run. */
  applied: string[];
  tables: TableIdentity[];
  /** The capture's slot, as resolved. */
  slot: string;
  /** The source as checked before anything was changed: capturable (wal_level, encoding, version). */
  source: SourceIdentity;
}

/** Misconfiguration found while preparing the source; reconnecting will not fix it. */
export class SourceMigrationError extends DiffrelayError {
  override name = "SourceMigrationError";

  constructor(message: string, options?: { cause?: unknown }) {
    super("setup", message, options);
  }
}

/**
 * Sets up the source for capture: the diffrelay schema, the publication, the
 * pgoutput slot and replica identities. Safe to run at every capture start.
 */
export async function migrateSource(
  client: pg.ClientBase,
  config: SourceMigrationConfig,
): Promise<SourceMigrationResult> {
  const source = await checkPrerequisites(client, config);
  // diffrelay's own DDL (and its REPLICA IDENTITY changes) is setup, not schema to replicate.
  await client.query("SET diffrelay.capture_ddl = off");
  try {
    return await withMigrationLock(client, async () => {
      const slot = await resolveCaptureSlot(client, config.slotName, config.note);
      const tables = await resolveTables(client, config.tables ?? []);
      const migrations = loadMigrations("source", config.migrationsDir);
      const applied = await explain(
        () =>
          runMigrations(client, migrations, publicationPlaceholders({ ...config, slotName: slot }, tables)),
        "apply the source migrations",
      );
      return { applied, tables: await ensureReplicaIdentity(client, config), slot, source };
    });
  } finally {
    await client.query("RESET diffrelay.capture_ddl");
  }
}

/**
 * Sets REPLICA IDENTITY on every published table (FULL unless configured
 * "default" and keyed) and returns each table's mode, for the caller to log.
 * Call it when a relation appears that the last call did not cover.
 */
export async function ensureReplicaIdentity(
  client: pg.ClientBase,
  config: Pick<SourceMigrationConfig, "publicationName" | "identity">,
): Promise<TableIdentity[]> {
  const defaults = Object.entries(config.identity ?? {})
    .filter(([, mode]) => mode === "default")
    .map(([name]) => name);
  const defaultOids = (await resolveTables(client, defaults)).map((table) => table.oid);
  const result = await explain(
    () =>
      client.query<{ table_name: string; identity: "full" | "default" }>(
        "SELECT table_name, identity FROM diffrelay.ensure_replica_identity($1, $2::oid[]) ORDER BY table_name",
        [config.publicationName, defaultOids],
      ),
    "set replica identity",
  );
  return result.rows.map((row) => ({ name: row.table_name, identity: row.identity }));
}

async function checkPrerequisites(
  client: pg.ClientBase,
  config: SourceMigrationConfig,
): Promise<SourceIdentity> {
  const source = await identifySource(client);
  assertCapturable(source);
  if ((config.schemas?.length ?? 0) > 0 && source.serverVersionNum < 150000) {
    throw new SourceMigrationError(
      "publishing whole schemas needs PostgreSQL 15 or later; list the tables instead",
    );
  }
  return source;
}

interface ResolvedTable {
  oid: number;
  /** Quoted and qualified, ready to splice into SQL. */
  sql: string;
}

/** Splits "schema.table" (either part optionally double-quoted) into its parts. */
export function parseTableName(name: string): { schema: string; table: string } {
  const parts: string[] = [];
  const pattern = /\s*(?:"((?:[^"]|"")*)"|([^."\s]+))\s*(\.|$)/y;
  let match: RegExpExecArray | null = pattern.exec(name);
  while (match !== null) {
    parts.push(match[1] !== undefined ? match[1].replaceAll('""', '"') : (match[2] as string));
    if (match[3] === "" || pattern.lastIndex >= name.length) break;
    match = pattern.exec(name);
  }
  if (pattern.lastIndex < name.length || parts.length === 0 || parts.length > 2) {
    throw new SourceMigrationError(`cannot parse table name ${JSON.stringify(name)}; expected schema.table`);
  }
  return parts.length === 2
    ? { schema: parts[0] as string, table: parts[1] as string }
    : { schema: "public", table: parts[0] as string };
}

async function resolveTables(client: pg.ClientBase, names: string[]): Promise<ResolvedTable[]> {
  if (names.length === 0) return [];
  const parsed = names.map(parseTableName);
  const found = await client.query<{ n: number; oid: number | null }>(
    `SELECT t.n::int AS n, c.oid::int8 AS oid
       FROM unnest($1::text[], $2::text[]) WITH ORDINALITY AS t(schema, name, n)
       LEFT JOIN pg_catalog.pg_namespace ns ON ns.nspname = t.schema
       LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = ns.oid AND c.relname = t.name AND c.relkind IN ('r', 'p')
      ORDER BY t.n`,
    [parsed.map((p) => p.schema), parsed.map((p) => p.table)],
  );
  const missing = found.rows.filter((row) => row.oid === null).map((row) => names[row.n - 1]);
  if (missing.length > 0) {
    throw new SourceMigrationError(`configured table(s) not found on the source: ${missing.join(", ")}`);
  }
  return found.rows.map((row, index) => {
    const p = parsed[index] as { schema: string; table: string };
    return { oid: Number(row.oid), sql: quoteQualified(p.schema, p.table) };
  });
}

function publicationPlaceholders(
  config: SourceMigrationConfig & { slotName: string },
  tables: ResolvedTable[],
): Map<string, string> {
  const objects: string[] = [];
  if ((config.schemas?.length ?? 0) > 0) {
    objects.push(`TABLES IN SCHEMA ${(config.schemas ?? []).map(quoteIdent).join(", ")}`);
  }
  if (tables.length > 0) objects.push(`TABLE ${tables.map((t) => t.sql).join(", ")}`);
  const allTables = objects.length === 0;
  const publication = quoteIdent(config.publicationName);
  return new Map([
    ["publication_ident", publication],
    ["publication_literal", quoteLiteral(config.publicationName)],
    ["slot_literal", quoteLiteral(config.slotName)],
    ["all_tables", allTables ? "true" : "false"],
    ["publication_target", allTables ? "FOR ALL TABLES" : `FOR ${objects.join(", ")}`],
    // SET replaces the publication's list with the configured one, touching only the difference.
    [
      "publication_alter",
      allTables ? "NULL;" : `ALTER PUBLICATION ${publication} SET ${objects.join(", ")};`,
    ],
  ]);
}

/** Turns PostgreSQL's permission and prerequisite errors into messages that say what to fix. */
async function explain<T>(run: () => Promise<T>, action: string): Promise<T> {
  try {
    return await run();
  } catch (error) {
    const { code, message } = error as { code?: string; message?: string };
    if (code === "42501") {
      throw new SourceMigrationError(
        `no permission to ${action} on the source (${message}); the role needs CREATE on the database, ` +
          "ownership of the published tables, and REPLICATION (or superuser for FOR ALL TABLES / IN SCHEMA)",
        { cause: error },
      );
    }
    if (code === "55000") throw new SourceMigrationError(`cannot ${action}: ${message}`, { cause: error });
    throw error;
  }
}
