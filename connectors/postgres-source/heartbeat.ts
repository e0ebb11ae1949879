import type pg from "pg";

/** Logical-message prefix of the capture's heartbeats (non-transactional, so they arrive at once). */
export const HEARTBEAT_PREFIX = "diffrelay.heartbeat";

/**
 * Writes a tiny WAL record that the slot streams back. When nothing published
 * changes, its LSN is a position the capture can confirm, so an idle or
 * unpublished-only workload never pins WAL behind the slot.
 */
export async function emitHeartbeat(client: pg.Client): Promise<void> {
  await client.query("SELECT pg_logical_emit_message(false, $1, '')", [HEARTBEAT_PREFIX]);
}
