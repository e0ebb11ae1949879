import pg from "pg";
import { HEARTBEAT_PREFIX } from "../../connectors/postgres-source/index.js";
import { formatLsn, type Lsn, parseLsn } from "../../src/change/lsn.js";

export type OldPrimaryState =
  | { alive: true; fencedAt: string }
  | { alive: false; reason: string; lastKnownSlotLagBytes: number | null };

const CONNECT_TIMEOUT_MS = 5000;

/**
 * Stops the old primary's writes from reaching the topic. When it answers:
 * new sessions of its database become read-only, the sessions writing now are
 * ended, and a heartbeat written after that tells when the capture has made
 * everything before it durable in Kafka (the slot's confirmed position passes
 * it). When it does not answer, it is recorded as gone; what it may have lost
 * is the capture's last known slot lag.
 */
export async function fenceOldPrimary(options: {
  config: pg.ClientConfig;
  slot: string;
  timeoutMs: number;
  lastKnownSlotLag: () => Promise<number | null>;
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
    await client.query(`ALTER DATABASE ${pg.escapeIdentifier(db)} SET default_transaction_read_only = on`);
    await client.query(
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend'`,
    );
    const heartbeat = parseLsn(
      (
        await client.query<{ lsn: string }>(
          "SELECT pg_logical_emit_message(false, $1, 'promote')::text AS lsn",
          [HEARTBEAT_PREFIX],
        )
      ).rows[0]?.lsn as string,
    );
    await waitForSlot(client, options.slot, heartbeat, options.timeoutMs);
    return { alive: true, fencedAt: formatLsn(heartbeat) };
  } finally {
    await client.end().catch(() => undefined);
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
        `the capture did not confirm the old primary's last writes within ${timeoutMs} ms (slot at ${row.lsn}, writes end at ${formatLsn(target)}); is it running?`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
