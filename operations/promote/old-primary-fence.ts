import pg from "pg";
import {
  HEARTBEAT_PREFIX,
  resolveCaptureSlot,
  SequenceTracker,
} from "../../connectors/postgres-source/index.js";
import { formatLsn, type Lsn, parseLsn } from "../../src/change/lsn.js";
import { closeQuietly } from "../../src/errors/close-quietly.js";
import { CONNECT_TIMEOUT_MS, setDatabaseConnectable, setDatabaseReadOnly } from "./database-access.js";

export type OldPrimaryState =
  | { alive: true; fencedAt: string }
  | { alive: false; reason: string; lastKnownSlotLagBytes: number | null };

/**
 * Stops the old primary's writes from reaching the topic. When it answers:
 * its database stops accepting connections (ALLOW_CONNECTIONS false, which
 * binds superusers too, so no session can come back and turn
 * default_transaction_read_only off), every client session of it is ended and
 * promote waits until they are gone, the replicated sequences' positions are
 * published, and a heartbeat written after that tells when the capture has
 * made everything before it durable in Kafka (the slot's confirmed position
 * passes it). The capture's walsender keeps streaming; a capture that
 * reconnects now cannot, and the wait says so. The capture's own client
 * sessions (named by their pids, which a client cannot forge the way it can an
 * application_name) are spared: the capture loads a relation's schema on one
 * when it reads that relation's first change, which may come after the fence.
 * Not covered: background workers that bypass ALLOW_CONNECTIONS, and other
 * databases of the server.
 * promote checks after the drain that the topic did not grow (see
 * assertNothingPastEnd), so even those cannot pass unnoticed.
 * When it does not answer, it is recorded as gone; what it may have lost is
 * the capture's last known slot lag.
 */
export async function fenceOldPrimary(options: {
  config: pg.ClientConfig;
  /** Unset: the default for the old primary's database. */
  slot: string | undefined;
  publication: string;
  timeoutMs: number;
  lastKnownSlotLag: () => Promise<number | null>;
  /** The capture's client sessions on this database, read at each round of ending sessions (unset: none). */
  capturePids?: () => readonly number[];
}): Promise<OldPrimaryState> {
  const client = new pg.Client({ ...options.config, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  client.on("error", () => undefined);
  try {
    await client.connect();
  } catch (err) {
    return {
      alive: false,
      reason: (err as Error).message,
      lastKnownSlotLagBytes: await options.lastKnownSlotLag(),
    };
  }
  try {
    await client.query("SELECT set_config('diffrelay.capture_ddl', 'off', false)");
    const db = (await client.query<{ db: string }>("SELECT current_database() AS db")).rows[0]?.db as string;
    // Read-only too, for whoever re-enables connections: a node that follows the new primary, or an operator.
    await setDatabaseReadOnly(options.config, true);
    await setDatabaseConnectable(options.config, false);
    await endClientSessions(client, db, options.timeoutMs, options.capturePids);
    // Values handed out since the capture's last heartbeat would otherwise be handed out again.
    await new SequenceTracker(options.publication).publishChanged(client);
    const heartbeat = parseLsn(
      (
        await client.query<{ lsn: string }>(
          "SELECT pg_logical_emit_message(false, $1, 'promote')::text AS lsn",
          [HEARTBEAT_PREFIX],
        )
      ).rows[0]?.lsn as string,
    );
    await waitForSlot(client, await resolveCaptureSlot(client, options.slot), heartbeat, options.timeoutMs);
    return { alive: true, fencedAt: formatLsn(heartbeat) };
  } finally {
    await closeQuietly(client.end());
  }
}

/**
 * pg_terminate_backend only signals: a session in the middle of its commit can
 * still commit after it returns. Waiting until they are gone puts every commit
 * of theirs before the heartbeat that follows.
 */
export async function endClientSessions(
  client: pg.Client,
  db: string,
  timeoutMs: number,
  spared: () => readonly number[] = () => [],
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const { rows } = await client.query<{ pid: number }>(
      `SELECT pid FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'
          AND pid <> ALL ($1::int[])`,
      [[...spared()]],
    );
    if (rows.length === 0) return;
    await client.query("SELECT pg_terminate_backend(pid) FROM unnest($1::int[]) AS pid", [
      rows.map((r) => r.pid),
    ]);
    if (Date.now() > deadline) {
      throw new Error(
        `sessions of database "${db}" on the old primary were still there ${timeoutMs} ms after being terminated (pids ${rows.map((r) => r.pid).join(", ")}): end them (pg_terminate_backend) and run the command again`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function waitForSlot(client: pg.Client, slot: string, target: Lsn, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const row = (
      await client.query<{ lsn: string | null }>(
        "SELECT confirmed_flush_lsn::text AS lsn FROM pg_replication_slots WHERE slot_name = $1",
        [slot],
      )
    ).rows[0];
    if (!row) throw new Error(`the old primary has no slot "${slot}": was the capture ever running there?`);
    if (row.lsn !== null && parseLsn(row.lsn) >= target) return;
    if (Date.now() > deadline) {
      throw new Error(
        `the capture did not confirm the old primary's last writes within ${timeoutMs} ms (slot "${slot}" at ${row.lsn}, writes end at ${formatLsn(target)}): is it running? Its database no longer accepts connections, so a capture that restarted cannot reconnect: ALTER DATABASE … ALLOW_CONNECTIONS true (from another database), let the capture catch up, and run promote again`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
