import pg from "pg";
import { type Lsn, parseLsn } from "../../src/change/lsn.js";
import { closeQuietly } from "../../src/errors/close-quietly.js";
import { quoteLiteral } from "../../src/sql/quote.js";

/**
 * A temporary logical slot created with an exported snapshot. Every source
 * transaction whose commit record starts before `consistentPoint` is visible in
 * the snapshot and none after it (PostgreSQL skips decoding exactly the commits
 * whose record starts before the slot's start point, and the snapshot is built
 * from the same point). The snapshot stays importable while the replication
 * connection that created it stays idle, so it is kept open until close().
 */
export interface ExportedSnapshot {
  slotName: string;
  consistentPoint: Lsn;
  snapshotName: string;
  close(): Promise<void>;
}

export async function createExportedSnapshot(
  connection: pg.ClientConfig,
  slotName: string,
  serverVersionNum: number,
): Promise<ExportedSnapshot> {
  const client = new pg.Client({ ...connection, replication: "database" } as pg.ClientConfig);
  // An idle replication connection can still drop; the caller sees it when importing fails.
  client.on("error", () => undefined);
  await client.connect();
  try {
    // PG15 introduced the parenthesised option list; PG14 only knows the bare keyword.
    const options = serverVersionNum >= 150000 ? "(SNAPSHOT 'export')" : "EXPORT_SNAPSHOT";
    const result = await client.query<{ consistent_point: string; snapshot_name: string }>(
      `CREATE_REPLICATION_SLOT ${slotName} TEMPORARY LOGICAL pgoutput ${options}`,
    );
    const row = result.rows[0];
    if (!row?.snapshot_name) throw new Error("CREATE_REPLICATION_SLOT returned no snapshot");
    return {
      slotName,
      consistentPoint: parseLsn(row.consistent_point),
      snapshotName: row.snapshot_name,
      close: () => closeQuietly(client.end()),
    };
  } catch (err) {
    await closeQuietly(client.end());
    throw err;
  }
}

/** Starts a REPEATABLE READ transaction on `client` that sees exactly the exported snapshot. */
export async function importSnapshot(client: pg.ClientBase, snapshotName: string): Promise<void> {
  await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  // The name comes from the server, but it is quoted anyway: it is spliced into SQL text.
  await client.query(`SET TRANSACTION SNAPSHOT ${quoteLiteral(snapshotName)}`);
}
