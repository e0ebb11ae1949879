import pg from "pg";
import {
  loadRelationSchema,
  parseTableName,
  type RelationMessage,
  readZeroLossState,
  resolveCaptureSlot,
  zeroLossSetting,
} from "../../connectors/postgres-source/index.js";
import type { RelationSchema, ReplicaIdentity } from "../../src/change/relation-schema.js";
import { closeQuietly } from "../../src/errors/close-quietly.js";
import { quoteLiteral } from "../../src/sql/quote.js";
import { CheckList, formatBytes, withConnection } from "./doctor-report.js";

export interface SourceCheckOptions {
  config: pg.ClientConfig;
  /** Unset: the default for the source's database. */
  slot: string | undefined;
  /** capture.tables and capture.schemas: what the capture will publish (neither: all tables). */
  tables: string[];
  schemas: string[];
  identity: Record<string, "full" | "default">;
  /** capture.zeroLoss: commits are to wait for the capture. */
  zeroLoss: boolean;
}

export interface SourceFindings {
  checks: CheckList;
  /** The tables the capture will publish, as the applier will see them; null when the source was not reachable. */
  tables: RelationSchema[] | null;
}

const IDENTITY: Record<string, ReplicaIdentity> = { d: "default", f: "full", i: "index", n: "nothing" };

/** Checks one source against what the capture needs, as the configured capture role. */
export async function checkSource(options: SourceCheckOptions): Promise<SourceFindings> {
  const checks = new CheckList("source");
  let tables: RelationSchema[] | null = null;
  await withConnection(checks, options.config, "check source.url and pg_hba.conf", async (client) => {
    const role = await checkServer(client, checks);
    const slot = await resolveCaptureSlot(client, options.slot);
    await checkSlots(client, checks, slot);
    await checks.run("zero-loss", () => checkZeroLoss(client, checks, slot, options.zeroLoss));
    await checks.run("replication connection", () => checkReplicationConnection(options.config, checks));
    await checks.run("tables", async () => {
      tables = await checkTables(client, checks, options, role);
    });
  });
  return { checks, tables };
}

interface RoleFacts {
  name: string;
  superuser: boolean;
}

async function checkServer(client: pg.Client, checks: CheckList): Promise<RoleFacts> {
  const { rows } = await client.query<{
    wal_level: string;
    version: number;
    encoding: string;
    role: string;
    superuser: boolean;
    replication: boolean;
    db_create: boolean;
    schema_exists: boolean;
    control: boolean;
    ddl_installed: boolean;
  }>(
    `SELECT pg_catalog.current_setting('wal_level') AS wal_level,
            pg_catalog.current_setting('server_version_num')::int AS version,
            pg_catalog.pg_encoding_to_char(d.encoding) AS encoding,
            r.rolname AS role, r.rolsuper AS superuser, r.rolreplication AS replication,
            pg_catalog.has_database_privilege(pg_catalog.current_database(), 'CREATE') AS db_create,
            EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'diffrelay') AS schema_exists,
            pg_catalog.has_function_privilege('pg_catalog.pg_control_system()', 'EXECUTE') AS control,
            EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname LIKE 'diffrelay%') AS ddl_installed
       FROM pg_catalog.pg_database d, pg_catalog.pg_roles r
      WHERE d.datname = pg_catalog.current_database() AND r.rolname = current_user`,
  );
  const s = rows[0];
  if (!s) throw new Error("the source returned no settings row");
  if (s.wal_level === "logical") checks.add("wal_level", "ok", "logical");
  else
    checks.add(
      "wal_level",
      "fail",
      `${s.wal_level}: logical decoding needs logical`,
      "ALTER SYSTEM SET wal_level = logical, then restart PostgreSQL",
    );
  if (s.version < 140000 || s.encoding !== "UTF8") {
    checks.add(
      "server",
      "fail",
      `PostgreSQL ${s.version}, database encoding ${s.encoding}`,
      "diffrelay needs PostgreSQL 14 or later and a UTF8 database",
    );
  }

  const missing: string[] = [];
  if (!s.superuser && !s.replication) missing.push(`ALTER ROLE ${s.role} REPLICATION`);
  if (!s.superuser && !s.db_create && !s.schema_exists)
    missing.push(`GRANT CREATE ON DATABASE <db> TO ${s.role} (for its diffrelay schema)`);
  if (!s.control) missing.push(`GRANT EXECUTE ON FUNCTION pg_catalog.pg_control_system() TO ${s.role}`);
  if (missing.length > 0)
    checks.add("capture role", "fail", `${s.role} lacks privileges`, missing.join("; "));
  else
    checks.add(
      "capture role",
      "ok",
      `${s.role}: ${s.superuser ? "superuser" : "REPLICATION, CREATE on the database, EXECUTE on pg_control_system()"}`,
    );

  if (s.ddl_installed) checks.add("DDL capture", "ok", "installed (event triggers diffrelay_*)");
  else if (s.superuser) checks.add("DDL capture", "ok", "can be installed: the capture installs it at start");
  else
    checks.add(
      "DDL capture",
      "warn",
      `${s.role} is not a superuser, so the event triggers cannot be installed: schema changes are not replicated`,
      "apply every schema change to each standby yourself before the source's, or install migrations/source/003_ddl_capture.sql and 004_rewrite_recopy.sql once as a superuser",
    );
  return { name: s.role, superuser: s.superuser };
}

/**
 * Whether commits wait for the capture (its application_name is its slot's
 * name), against what is configured: zero-loss mode needs them to, and
 * without it a setting that names the capture still makes commits wait.
 */
async function checkZeroLoss(
  client: pg.Client,
  checks: CheckList,
  slot: string,
  wanted: boolean,
): Promise<void> {
  const state = await readZeroLossState(client, slot);
  const { rows } = await client.query<{ connected: boolean; superuser: boolean; version: number }>(
    `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_stat_replication WHERE application_name = $1) AS connected,
            (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) AS superuser,
            pg_catalog.current_setting('server_version_num')::int AS version`,
    [slot],
  );
  const { connected, superuser, version } = rows[0] as {
    connected: boolean;
    superuser: boolean;
    version: number;
  };
  // Parameter privileges exist from 15 on; PostgreSQL 14 rejects the function's name even in a branch never taken.
  let maySet = superuser;
  if (!maySet && version >= 150000) {
    const { rows: p } = await client.query<{ ok: boolean }>(
      `SELECT pg_catalog.has_parameter_privilege('synchronous_standby_names', 'ALTER SYSTEM')
              AND pg_catalog.has_function_privilege('pg_catalog.pg_reload_conf()', 'EXECUTE') AS ok`,
    );
    maySet = p[0]?.ok === true;
  }
  const names = quoteLiteral(state.synchronousStandbyNames);
  const line = `synchronous_standby_names = ${quoteLiteral(zeroLossSetting(slot))}`;
  if (state.guarantee !== "off" && !connected) {
    checks.add(
      "zero-loss",
      state.guarantee === "required" ? "fail" : "warn",
      `synchronous_standby_names ${names} names the capture (application_name "${slot}"), which is not connected: ` +
        (state.guarantee === "required"
          ? "commits on the source wait until it is"
          : "commits wait for another standby"),
      "start the capture, or remove it from synchronous_standby_names (and reload) to let commits return without it",
    );
    return;
  }
  if (!wanted) {
    if (state.guarantee === "off") checks.add("zero-loss", "ok", "off: commits do not wait for the capture");
    else
      checks.add(
        "zero-loss",
        "warn",
        `zero-loss mode is off, but synchronous_standby_names ${names} names the capture: commits wait for it all the same`,
        "turn zero-loss mode on (--zero-loss) to say so, or remove the capture from synchronous_standby_names",
      );
    return;
  }
  if (state.synchronousCommit === "off" || state.synchronousCommit === "local") {
    checks.add(
      "zero-loss",
      "fail",
      `synchronous_commit is ${state.synchronousCommit}: commits would not wait for the capture`,
      "set synchronous_commit = on (or remote_write, remote_apply) in postgresql.conf and reload",
    );
  } else if (state.guarantee === "required") {
    checks.add(
      "zero-loss",
      "ok",
      `synchronous_standby_names ${names}: every commit waits until Kafka holds it`,
    );
  } else if (state.guarantee === "optional") {
    checks.add(
      "zero-loss",
      "warn",
      `synchronous_standby_names ${names} names the capture, but another standby can release a commit without it`,
      `for every commit to wait for Kafka: ${line} (or list every name with FIRST n / ANY n equal to their number)`,
    );
  } else if (state.synchronousStandbyNames.trim() !== "") {
    checks.add(
      "zero-loss",
      "fail",
      `synchronous_standby_names ${names} does not name the capture (application_name "${slot}"): the capture refuses to start`,
      `add it, e.g. FIRST 2 (<your standby>, ${zeroLossSetting(slot)}), and reload`,
    );
  } else if (maySet) {
    checks.add("zero-loss", "ok", `synchronous_standby_names is empty: the capture sets ${line} at start`);
  } else {
    checks.add(
      "zero-loss",
      "fail",
      "synchronous_standby_names is empty and the capture role may not set it: the capture refuses to start",
      `put ${line} in postgresql.conf and reload, or GRANT ALTER SYSTEM ON PARAMETER synchronous_standby_names and EXECUTE ON FUNCTION pg_reload_conf() to the capture role`,
    );
  }
}

async function checkSlots(client: pg.Client, checks: CheckList, slot: string): Promise<void> {
  const { rows } = await client.query<{
    max_slots: number;
    slots: number;
    ours: boolean;
    active: boolean | null;
    max_senders: number;
    senders: number;
    keep_mb: number;
    wal_status: string | null;
    safe_wal_size: string | null;
  }>(
    `SELECT pg_catalog.current_setting('max_replication_slots')::int AS max_slots,
            (SELECT count(*) FROM pg_catalog.pg_replication_slots)::int AS slots,
            s.slot_name IS NOT NULL AS ours, s.active,
            pg_catalog.current_setting('max_wal_senders')::int AS max_senders,
            (SELECT count(*) FROM pg_catalog.pg_stat_replication)::int AS senders,
            (SELECT setting::int FROM pg_catalog.pg_settings WHERE name = 'max_slot_wal_keep_size') AS keep_mb,
            s.wal_status, s.safe_wal_size::text
       FROM (SELECT 1) one
       LEFT JOIN pg_catalog.pg_replication_slots s ON s.slot_name = $1`,
    [slot],
  );
  const r = rows[0];
  if (!r) throw new Error("the source returned no slot row");
  // The capture needs one slot and one WAL sender (unless it has them already);
  // each running seed needs one more of each, for its temporary snapshot slot.
  const slotsNeeded = r.ours ? 0 : 1;
  const slotsFree = r.max_slots - r.slots;
  const slotLine = `${r.slots} of max_replication_slots ${r.max_slots} in use${r.ours ? `, the capture's slot "${slot}" among them` : ""}`;
  if (slotsFree < slotsNeeded)
    checks.add(
      "replication slots",
      "fail",
      `${slotLine}: no room for the capture's slot`,
      "raise max_replication_slots (restart)",
    );
  else if (slotsFree - slotsNeeded < 1)
    checks.add(
      "replication slots",
      "warn",
      `${slotLine}: no room left for a seed's temporary slot`,
      "raise max_replication_slots (restart)",
    );
  else
    checks.add("replication slots", "ok", `${slotLine}; ${slotsFree - slotsNeeded} free after the capture's`);

  const sendersNeeded = r.active ? 0 : 1;
  const sendersFree = r.max_senders - r.senders;
  const senderLine = `${r.senders} of max_wal_senders ${r.max_senders} in use`;
  if (sendersFree < sendersNeeded)
    checks.add(
      "wal senders",
      "fail",
      `${senderLine}: no room for the capture's`,
      "raise max_wal_senders (restart)",
    );
  else if (sendersFree - sendersNeeded < 1)
    checks.add(
      "wal senders",
      "warn",
      `${senderLine}: no room left for a seed's`,
      "raise max_wal_senders (restart)",
    );
  else
    checks.add("wal senders", "ok", `${senderLine}; ${sendersFree - sendersNeeded} free after the capture's`);

  if (r.keep_mb < 0) {
    checks.add(
      "max_slot_wal_keep_size",
      "warn",
      "-1 (unlimited): while the capture is stopped the primary keeps every WAL segment since the slot's position, until its disk fills",
      "set max_slot_wal_keep_size: a capture stopped longer than that much WAL then loses its slot (standbys are re-seeded) instead of the primary its disk",
    );
  } else {
    checks.add(
      "max_slot_wal_keep_size",
      "ok",
      `${formatBytes(r.keep_mb * 1024 * 1024)}: a capture stopped while the primary writes more WAL than that loses its slot, and every standby must then be re-seeded`,
    );
  }
  if (r.wal_status === "lost")
    checks.add(
      "slot",
      "fail",
      `slot "${slot}" was invalidated (wal_status lost): the WAL it needed is gone`,
      "drop the slot, start the capture, and re-seed every standby",
    );
  else if (r.wal_status === "unreserved")
    checks.add(
      "slot",
      "warn",
      `slot "${slot}" holds more WAL than max_slot_wal_keep_size (wal_status unreserved, safe_wal_size ${r.safe_wal_size}): it is about to be invalidated`,
      "start the capture now",
    );
}

async function checkReplicationConnection(config: pg.ClientConfig, checks: CheckList): Promise<void> {
  // A real replication connection proves what SQL cannot show a non-superuser: the pg_hba replication line.
  const client = new pg.Client({
    ...config,
    replication: "database",
    connectionTimeoutMillis: 10_000,
  } as pg.ClientConfig);
  try {
    await client.connect();
    await client.query("IDENTIFY_SYSTEM");
    checks.add("replication connection", "ok", "accepted (pg_hba.conf and REPLICATION)");
  } catch (err) {
    checks.add(
      "replication connection",
      "fail",
      `refused: ${(err as Error).message}`,
      "add a host/hostssl replication line for the role to pg_hba.conf and give it REPLICATION",
    );
  } finally {
    await closeQuietly(client.end());
  }
}

interface TableRow {
  oid: string;
  schema: string;
  table: string;
  relkind: string;
  persistence: string;
  identity: string;
  has_pk: boolean;
  owned: boolean;
}

/** Types whose values replicate, but whose meaning may not: each with why. */
const DOUBTFUL_TYPES: [RegExp, string][] = [
  [
    /^oid$/,
    "large objects are not replicated (logical decoding carries no pg_largeobject): the oid arrives, the object does not",
  ],
  [/^money$/, "its text form follows lc_monetary: every standby needs the source's lc_monetary"],
  [/^(tid|xid|xid8|cid)$/, "row and transaction identifiers of the source mean nothing on a standby"],
  [/^reg/, "sent by name: the named object must exist on every standby, or applying the row fails"],
];

async function checkTables(
  client: pg.Client,
  checks: CheckList,
  options: SourceCheckOptions,
  role: RoleFacts,
): Promise<RelationSchema[]> {
  const configured = options.tables.map(parseTableName);
  const allTables = options.tables.length === 0 && options.schemas.length === 0;
  if (!role.superuser && (allTables || options.schemas.length > 0)) {
    checks.add(
      "publication",
      "fail",
      `${allTables ? "FOR ALL TABLES (no capture.tables)" : "TABLES IN SCHEMA (capture.schemas)"} needs a superuser; ${role.name} is not one`,
      "list the tables with --tables (capture.tables)",
    );
  }
  const { rows: missing } = await client.query<{ name: string }>(
    `SELECT t.schema || '.' || t.name AS name
       FROM unnest($1::text[], $2::text[]) AS t(schema, name)
      WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                         WHERE n.nspname = t.schema AND c.relname = t.name AND c.relkind IN ('r', 'p'))`,
    [configured.map((t) => t.schema), configured.map((t) => t.table)],
  );
  if (missing.length > 0)
    checks.add(
      "tables",
      "fail",
      `configured but not on the source: ${missing.map((m) => m.name).join(", ")}`,
      "fix capture.tables, or create the tables",
    );
  // What the publication will carry: the chosen tables and, with
  // publish_via_partition_root off, the leaf partitions of partitioned ones.
  const { rows } = await client.query<TableRow>(
    `WITH chosen AS (
       SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
          AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'diffrelay') AND n.nspname NOT LIKE 'pg\\_%'
          AND ($3 OR n.nspname = ANY ($4::text[])
               OR (n.nspname, c.relname) IN (SELECT * FROM unnest($1::text[], $2::text[])))
     ), leaves AS (
       SELECT oid FROM chosen
       UNION SELECT t.relid FROM chosen CROSS JOIN LATERAL pg_catalog.pg_partition_tree(chosen.oid) t
     )
     SELECT c.oid::int8::text AS oid, n.nspname AS schema, c.relname AS table, c.relkind::text AS relkind,
            c.relpersistence::text AS persistence, c.relreplident::text AS identity,
            EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) AS has_pk,
            pg_catalog.pg_has_role(c.relowner, 'USAGE') AS owned
       FROM leaves JOIN pg_catalog.pg_class c ON c.oid = leaves.oid
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE c.relkind = 'r'
      ORDER BY n.nspname, c.relname`,
    [configured.map((t) => t.schema), configured.map((t) => t.table), allTables, options.schemas],
  );
  const name = (t: TableRow) => `${t.schema}.${t.table}`;
  const unlogged = rows.filter((t) => t.persistence !== "p");
  const published = rows.filter((t) => t.persistence === "p");
  if (unlogged.length > 0)
    checks.add(
      "unlogged tables",
      allTables ? "warn" : "fail",
      `${unlogged.map(name).join(", ")}: not in the WAL, so never replicated`,
      "ALTER TABLE ... SET LOGGED, or leave them out of capture.tables",
    );
  if (published.length === 0) {
    checks.add(
      "tables",
      "warn",
      "the capture would publish no table",
      "create tables, or set capture.tables / capture.schemas",
    );
    return [];
  }
  const notOwned = published.filter((t) => !t.owned);
  if (!role.superuser && notOwned.length > 0)
    checks.add(
      "table ownership",
      "fail",
      `${role.name} does not own ${notOwned.map(name).join(", ")}: REPLICA IDENTITY FULL and a FOR TABLE publication need the owner`,
      `ALTER TABLE ... OWNER TO ${role.name} (or to a role it belongs to)`,
    );
  else checks.add("tables", "ok", `${published.length} published: ${summarize(published.map(name))}`);

  const keyless = published.filter((t) => !t.has_pk);
  if (keyless.length > 0) {
    const configuredDefault = keyless.filter((t) => options.identity[name(t)] === "default");
    checks.add(
      "primary keys",
      "warn",
      `no primary key: ${summarize(keyless.map(name))} (REPLICA IDENTITY FULL${configuredDefault.length ? `, also where capture.identity says default: ${configuredDefault.map(name).join(", ")}` : ""}): each UPDATE and DELETE finds its row on a standby by every column, a full scan without an index`,
      "add a primary key, or at least an index on the standbys",
    );
  } else checks.add("primary keys", "ok", "every published table has one");

  const { rows: doubtful } = await client.query<{
    table: string;
    column: string;
    type_name: string;
    base: string;
  }>(
    `SELECT n.nspname || '.' || c.relname AS table, a.attname AS column,
            pg_catalog.format_type(a.atttypid, a.atttypmod) AS type_name, b.typname::text AS base
       FROM pg_catalog.pg_attribute a
       JOIN pg_catalog.pg_class c ON c.oid = a.attrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
       JOIN pg_catalog.pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype
                                               WHEN t.typelem <> 0 AND t.typlen = -1 THEN t.typelem ELSE t.oid END
      WHERE a.attrelid = ANY ($1::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
        AND b.typnamespace = 'pg_catalog'::regnamespace
      ORDER BY 1, a.attnum`,
    [published.map((t) => t.oid)],
  );
  const flagged = doubtful.flatMap((d) => {
    const why = DOUBTFUL_TYPES.find(([pattern]) => pattern.test(d.base));
    return why ? [{ ...d, why: why[1] }] : [];
  });
  if (flagged.length === 0) checks.add("column types", "ok", "every column's type replicates by value");
  for (const f of flagged)
    checks.add(
      "column types",
      "warn",
      `${f.table}.${f.column} is ${f.type_name}: ${f.why}`,
      "use a type that carries its value (bytea, text, a key of your own)",
    );

  // The definitions the applier will meet: built the way the capture builds them
  // from pgoutput, which leaves generated columns out.
  const relations: RelationSchema[] = [];
  for (const t of published) {
    const { rows: columns } = await client.query<{ name: string; type_oid: number; typmod: number }>(
      `SELECT attname AS name, atttypid::int8 AS type_oid, atttypmod AS typmod FROM pg_catalog.pg_attribute
        WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped AND attgenerated = '' ORDER BY attnum`,
      [t.oid],
    );
    const relation: RelationMessage = {
      tag: "relation",
      relationId: Number(t.oid),
      schema: t.schema,
      table: t.table,
      replicaIdentity: IDENTITY[t.identity] ?? "full",
      columns: columns.map((c) => ({
        name: c.name,
        typeOid: Number(c.type_oid),
        typeModifier: c.typmod,
        isKey: false,
      })),
    };
    relations.push(await loadRelationSchema(client, Number(t.oid), relation));
  }
  return relations;
}

function summarize(names: string[]): string {
  return names.length <= 8
    ? names.join(", ")
    : `${names.slice(0, 8).join(", ")} and ${names.length - 8} more`;
}
