import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import type pg from "pg";

/**
 * What crosses the interconnect, measured three ways for the same work:
 * diffrelay's Kafka log, PostgreSQL's own logical replication (pgoutput), and
 * physical streaming replication (the WAL itself).
 */

/** Bytes of a topic's log segments on the broker's disk: compressed batches with all Kafka overhead. */
export function kafkaTopicLogBytes(kafkaLogDir: string, topic: string): number {
  let total = 0;
  for (const entry of readdirSync(kafkaLogDir)) {
    // Partition directories are "<topic>-<partition>"; the topic name itself may contain dashes.
    if (!entry.startsWith(`${topic}-`) || !/^\d+$/.test(entry.slice(topic.length + 1))) continue;
    for (const file of readdirSync(join(kafkaLogDir, entry))) {
      if (file.endsWith(".log")) total += statSync(join(kafkaLogDir, entry, file)).size;
    }
  }
  return total;
}

/** A pgoutput slot that only measures: it sees the same changes a native subscriber would be sent. */
export async function createMeasuringSlot(client: pg.Client, slot: string): Promise<void> {
  await client.query("SELECT pg_create_logical_replication_slot($1, 'pgoutput')", [slot]);
}

/**
 * Bytes pgoutput produces for the changes since the slot was created, as a
 * native subscriber of `publication` would receive them (message payloads,
 * without the few bytes of CopyData framing per message).
 */
export async function pgoutputBytes(client: pg.Client, slot: string, publication: string): Promise<number> {
  const result = await client.query<{ bytes: string | null }>(
    `SELECT sum(octet_length(data))::text AS bytes
       FROM pg_logical_slot_get_binary_changes($1, NULL, NULL, 'proto_version', '1', 'publication_names', $2)`,
    [slot, publication],
  );
  return Number(result.rows[0]?.bytes ?? 0);
}

export async function dropSlot(client: pg.Client, slot: string): Promise<void> {
  await client.query(
    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1",
    [slot],
  );
}

export async function currentWalLsnText(client: pg.Client): Promise<string> {
  const result = await client.query<{ lsn: string }>("SELECT pg_current_wal_lsn()::text AS lsn");
  return (result.rows[0] as { lsn: string }).lsn;
}

/** WAL bytes between two LSNs: what physical streaming replication would ship. */
export async function walBytesBetween(client: pg.Client, from: string, to: string): Promise<number> {
  const result = await client.query<{ bytes: string }>(
    "SELECT pg_wal_lsn_diff($2::pg_lsn, $1::pg_lsn)::text AS bytes",
    [from, to],
  );
  return Number((result.rows[0] as { bytes: string }).bytes);
}
