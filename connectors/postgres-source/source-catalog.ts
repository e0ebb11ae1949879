import type pg from "pg";
import { type Lsn, parseLsn } from "../../src/change/lsn.js";
import type { RelationSchema } from "../../src/change/relation-schema.js";
import type { RelationMessage } from "./pgoutput/pgoutput-decoder.js";
import { SourceConfigurationError } from "./source-errors.js";

/** Catalog queries against the source, on a regular (non-replication) connection. */

export interface SourceIdentity {
  /** pg_control's system identifier: tells clusters apart, and changes when a standby is rebuilt from another primary. */
  systemIdentifier: string;
  databaseName: string;
  serverVersionNum: number;
  walLevel: string;
  encoding: string;
}

export async function identifySource(client: pg.ClientBase): Promise<SourceIdentity> {
  let result: pg.QueryResult<{
    system_identifier: string;
    database_name: string;
    server_version_num: number;
    wal_level: string;
    encoding: string;
  }>;
  try {
    result = await client.query(
      `SELECT (SELECT system_identifier::text FROM pg_catalog.pg_control_system()) AS system_identifier,
              pg_catalog.current_database() AS database_name,
              pg_catalog.current_setting('server_version_num')::int AS server_version_num,
              pg_catalog.current_setting('wal_level') AS wal_level,
              pg_catalog.pg_encoding_to_char(d.encoding) AS encoding
         FROM pg_catalog.pg_database d
        WHERE d.datname = pg_catalog.current_database()`,
    );
  } catch (error) {
    if ((error as { code?: string }).code === "42501") {
      throw new Error(
        "the source role may not call pg_control_system(); GRANT EXECUTE ON FUNCTION pg_catalog.pg_control_system() to it",
        { cause: error },
      );
    }
    throw error;
  }
  const row = result.rows[0];
  if (!row) throw new Error("the source returned no row for its current database");
  return {
    systemIdentifier: row.system_identifier,
    databaseName: row.database_name,
    serverVersionNum: row.server_version_num,
    walLevel: row.wal_level,
    encoding: row.encoding,
  };
}

/** Checks that the source can feed diffrelay, with one message naming every problem. */
export function assertCapturable(identity: SourceIdentity): void {
  const problems: string[] = [];
  if (identity.walLevel !== "logical") {
    problems.push(`wal_level is ${identity.walLevel}; set wal_level = logical and restart the source`);
  }
  if (identity.encoding !== "UTF8") {
    problems.push(
      `database "${identity.databaseName}" is encoded ${identity.encoding}; diffrelay requires UTF8`,
    );
  }
  if (identity.serverVersionNum < 140000) {
    problems.push(
      `PostgreSQL ${identity.serverVersionNum} is too old; diffrelay needs 14 or later (pgoutput messages)`,
    );
  }
  if (problems.length > 0) {
    throw new SourceConfigurationError("not_capturable", `source is not capturable: ${problems.join("; ")}`);
  }
}

/**
 * Builds a relation's schema from its pgoutput Relation message (the columns
 * as the decoder saw them) and the source's catalog (the primary key).
 *
 * Columns are matched by name: the message omits generated columns, so its
 * positions are not attnums. Type names come from the message's type OID and
 * modifier, formatted with only pg_catalog on the search_path so every other
 * type (enum, domain, composite, arrays of them) comes out schema-qualified and
 * quoted by PostgreSQL itself. The primary key is read from the current
 * catalog; a key column the message does not carry (a generated one), or a
 * relation dropped since, leaves the whole row as the key.
 */
export async function loadRelationSchema(
  client: pg.ClientBase,
  relationId: number,
  relation: RelationMessage,
): Promise<RelationSchema> {
  const columns = relation.columns;
  await client.query("BEGIN READ ONLY");
  let typeRows: { type_name: string }[];
  let keyRows: { attname: string }[];
  try {
    await client.query("SET LOCAL search_path = pg_catalog");
    typeRows = (
      await client.query<{ type_name: string }>(
        `SELECT format_type(t.oid, t.typmod) AS type_name
           FROM unnest($1::oid[], $2::int4[]) WITH ORDINALITY AS t(oid, typmod, n)
          ORDER BY t.n`,
        [columns.map((c) => c.typeOid), columns.map((c) => c.typeModifier)],
      )
    ).rows;
    keyRows = (
      await client.query<{ attname: string }>(
        `SELECT a.attname
           FROM pg_index i
           CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, n)
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
          WHERE i.indrelid = $1 AND i.indisprimary
          ORDER BY k.n`,
        [relationId],
      )
    ).rows;
    await client.query("COMMIT");
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  }

  const indexByName = new Map<string, number>();
  columns.forEach((column, index) => {
    indexByName.set(column.name, index);
  });
  const keyIndexes: number[] = [];
  for (const row of keyRows) {
    const index = indexByName.get(row.attname);
    if (index === undefined) break;
    keyIndexes.push(index);
  }
  const hasPrimaryKey = keyRows.length > 0 && keyIndexes.length === keyRows.length;

  return {
    relationId,
    schema: relation.schema,
    table: relation.table,
    replicaIdentity: relation.replicaIdentity,
    columns: columns.map((column, index) => {
      const typeName = typeRows[index]?.type_name;
      if (typeName === undefined)
        throw new Error(`no type name for column ${column.name} of ${relation.table}`);
      return { name: column.name, typeOid: column.typeOid, typeName, typeModifier: column.typeModifier };
    }),
    keyColumns: hasPrimaryKey ? keyIndexes : columns.map((_, index) => index),
    hasPrimaryKey,
  };
}

export interface SlotInfo {
  exists: boolean;
  active: boolean;
  activePid: number | null;
  confirmedFlushLsn: Lsn | null;
  restartLsn: Lsn | null;
  /** WAL the slot holds back from the consumer's view: current WAL position minus confirmed_flush_lsn. */
  lagBytes: bigint | null;
}

export async function slotInfo(client: pg.ClientBase, slotName: string): Promise<SlotInfo> {
  const result = await client.query<{
    active: boolean;
    active_pid: number | null;
    confirmed_flush_lsn: string | null;
    restart_lsn: string | null;
    lag_bytes: string | null;
  }>(
    `SELECT active, active_pid, confirmed_flush_lsn::text, restart_lsn::text,
            pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), confirmed_flush_lsn)::text AS lag_bytes
       FROM pg_catalog.pg_replication_slots
      WHERE slot_name = $1`,
    [slotName],
  );
  const row = result.rows[0];
  if (!row) {
    return {
      exists: false,
      active: false,
      activePid: null,
      confirmedFlushLsn: null,
      restartLsn: null,
      lagBytes: null,
    };
  }
  return {
    exists: true,
    active: row.active,
    activePid: row.active_pid,
    confirmedFlushLsn: row.confirmed_flush_lsn === null ? null : parseLsn(row.confirmed_flush_lsn),
    restartLsn: row.restart_lsn === null ? null : parseLsn(row.restart_lsn),
    lagBytes: row.lag_bytes === null ? null : BigInt(row.lag_bytes),
  };
}
