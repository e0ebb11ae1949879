import type pg from "pg";
import {
  columnTypeDifferences,
  readPosition,
  readTargetTable,
  SchemaDriftError,
  TableMappings,
  type TargetTable,
} from "../../connectors/postgres-standby/index.js";
import type { RelationSchema } from "../../src/change/relation-schema.js";
import type { TopicOffsets } from "../../src/kafka/topic-admin.js";
import { CheckList, withConnection } from "./doctor-report.js";

export interface StandbyCheckOptions {
  name: string;
  config: pg.ClientConfig;
  topic: string;
  /** The source's published tables; null when the source was not checked. */
  tables: RelationSchema[] | null;
  /** The data topic's retained offsets; null when unknown. */
  offsets: TopicOffsets | null;
}

const TABLE_PRIVILEGES = ["SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE"];

/** Checks one standby as the configured apply role: privileges, table definitions, position. */
export async function checkStandby(options: StandbyCheckOptions): Promise<CheckList> {
  const checks = new CheckList(`standby ${options.name}`);
  await withConnection(checks, options.config, "check the standby's URL and pg_hba.conf", async (client) => {
    await checks.run("apply role", () => checkRole(client, checks));
    if (options.tables === null)
      checks.add("tables", "warn", "not compared: the source's tables are unknown", "give --source-url");
    else await checks.run("tables", () => checkTables(client, checks, options.tables ?? []));
    await checks.run("position", () => checkPosition(client, checks, options));
  });
  return checks;
}

async function checkRole(client: pg.Client, checks: CheckList): Promise<void> {
  const { rows } = await client.query<{
    role: string;
    superuser: boolean;
    db_create: boolean;
    schema_exists: boolean;
    version: number;
  }>(
    `SELECT r.rolname AS role, r.rolsuper AS superuser,
            pg_catalog.has_database_privilege(pg_catalog.current_database(), 'CREATE') AS db_create,
            EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = 'diffrelay') AS schema_exists,
            pg_catalog.current_setting('server_version_num')::int AS version
       FROM pg_catalog.pg_roles r WHERE r.rolname = current_user`,
  );
  const r = rows[0];
  if (!r) throw new Error("the standby returned no role row");
  const missing: string[] = [];
  if (!r.superuser && !r.db_create && !r.schema_exists)
    missing.push(`GRANT CREATE ON DATABASE <db> TO ${r.role}`);
  // The applier sets session_replication_role = replica so that triggers and FK checks do not fire twice.
  let setRole = r.superuser;
  if (!setRole && r.version >= 150000) {
    const { rows: p } = await client.query<{ ok: boolean }>(
      "SELECT pg_catalog.has_parameter_privilege('session_replication_role', 'SET') AS ok",
    );
    setRole = p[0]?.ok === true;
  }
  if (!setRole)
    missing.push(
      r.version >= 150000
        ? `GRANT SET ON PARAMETER session_replication_role TO ${r.role}`
        : `a superuser (before PostgreSQL 15 only a superuser may set session_replication_role)`,
    );
  if (missing.length > 0) checks.add("apply role", "fail", `${r.role} lacks privileges`, missing.join("; "));
  else
    checks.add(
      "apply role",
      "ok",
      `${r.role}: ${r.superuser ? "superuser" : "CREATE on the database, SET on session_replication_role"}`,
    );
}

async function checkTables(client: pg.Client, checks: CheckList, tables: RelationSchema[]): Promise<void> {
  const mappings = new TableMappings();
  let compatible = 0;
  const targets: TargetTable[] = [];
  for (const source of tables) {
    const where = `${source.schema}.${source.table}`;
    try {
      const target = await readTargetTable(client, source.schema, source.table);
      // The applier's own check: throws SchemaDriftError where it would stop.
      mappings.of(source, target);
      const differing = columnTypeDifferences(source, target);
      if (differing.length > 0) {
        checks.add(
          "table",
          "fail",
          `${where}: ${differing.map((d) => `column ${d.column} is ${d.standby} on the standby, ${d.source} on the source`).join("; ")}`,
          "ALTER TABLE ... ALTER COLUMN ... TYPE to the source's type",
        );
        continue;
      }
      targets.push(target);
      compatible += 1;
    } catch (err) {
      if (!(err instanceof SchemaDriftError)) throw err;
      checks.add(
        "table",
        "fail",
        `${where}: ${err.column === null ? "" : `column ${err.column}: `}${err.problem}`,
        err.problem.includes("does not exist")
          ? "create it as on the source, or run diffrelay seed --create-schema"
          : "make the standby's definition the source's",
      );
    }
  }
  if (compatible === tables.length)
    checks.add("tables", "ok", `all ${tables.length} published tables present with compatible columns`);
  if (targets.length === 0) return;
  const { rows } = await client.query<{ name: string; missing: string[] }>(
    `SELECT c.oid::regclass::text AS name,
            array(SELECT p FROM unnest($2::text[]) p WHERE NOT pg_catalog.has_table_privilege(c.oid, p)) AS missing
       FROM pg_catalog.pg_class c WHERE c.oid = ANY ($1::oid[])
     UNION ALL
     SELECT s.oid::regclass::text,
            array(SELECT p FROM unnest(ARRAY['SELECT', 'UPDATE']) p WHERE NOT pg_catalog.has_sequence_privilege(s.oid, p))
       FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
      WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.refclassid = 'pg_catalog.pg_class'::regclass
        AND d.refobjid = ANY ($1::oid[])`,
    [targets.map((t) => t.oid), TABLE_PRIVILEGES],
  );
  const lacking = rows.filter((r) => r.missing.length > 0);
  if (lacking.length > 0)
    checks.add(
      "table privileges",
      "fail",
      lacking.map((l) => `${l.missing.join(", ")} on ${l.name}`).join("; "),
      "GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE on the tables and SELECT, UPDATE on their sequences to the apply role",
    );
  else
    checks.add(
      "table privileges",
      "ok",
      "DML and TRUNCATE on every table, SELECT and UPDATE on their sequences",
    );
}

async function checkPosition(
  client: pg.Client,
  checks: CheckList,
  options: StandbyCheckOptions,
): Promise<void> {
  const { rows } = await client.query<{ position: boolean; seed: boolean }>(
    `SELECT pg_catalog.to_regclass('diffrelay.apply_position') IS NOT NULL AS position,
            pg_catalog.to_regclass('diffrelay.seed_in_progress') IS NOT NULL AS seed`,
  );
  // Before the applier's first start the diffrelay schema may not exist yet: no position.
  const position = rows[0]?.position ? await readPosition(client, options.topic, 0) : null;
  const seeding = rows[0]?.seed
    ? (
        await client.query<{ interrupted: boolean }>(
          "SELECT EXISTS (SELECT 1 FROM diffrelay.seed_in_progress WHERE topic = $1) AS interrupted",
          [options.topic],
        )
      ).rows
    : [];
  if (seeding[0]?.interrupted) {
    checks.add(
      "position",
      "fail",
      "an interrupted seed left the tables half-copied; the applier refuses to start",
      "run diffrelay seed again",
    );
    return;
  }
  const offsets = options.offsets;
  if (position === null) {
    if (offsets === null)
      checks.add(
        "position",
        "warn",
        `no position for ${options.topic}, and the topic's offsets are unknown`,
        "seed it: diffrelay seed",
      );
    else if (offsets.low === 0n)
      checks.add(
        "position",
        "warn",
        `no position for ${options.topic}: the applier would apply the topic from offset 0, which is right only for a standby that was empty, like the source, when the capture first ran`,
        "seed it: diffrelay seed",
      );
    else
      checks.add(
        "position",
        "fail",
        `no position, and ${options.topic} no longer starts at offset 0 (earliest ${offsets.low})`,
        "seed it: diffrelay seed",
      );
    return;
  }
  const at = position.nextOffset;
  if (offsets === null) {
    checks.add("position", "warn", `next offset ${at}; the topic's offsets are unknown`);
  } else if (at < offsets.low) {
    checks.add(
      "position",
      "fail",
      `next offset ${at} is below the topic's earliest ${offsets.low}: offsets ${at}..${offsets.low - 1n} are gone (retention or deleted records)`,
      "re-seed the standby: diffrelay seed",
    );
  } else if (at > offsets.high) {
    checks.add(
      "position",
      "fail",
      `next offset ${at} is beyond the topic's end ${offsets.high}: the topic was recreated, or the position is another topic's`,
      "re-seed the standby: diffrelay seed",
    );
  } else {
    checks.add(
      "position",
      "ok",
      `next offset ${at}, within ${offsets.low}..${offsets.high} (${offsets.high - at} behind)`,
    );
  }
}
