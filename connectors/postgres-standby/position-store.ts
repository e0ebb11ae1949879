import type pg from "pg";
import { formatLsn, type Lsn, parseLsn } from "../../src/change/lsn.js";

export interface ApplyPosition {
  topic: string;
  partition: number;
  nextOffset: bigint;
  lastCommitLsn: Lsn;
  lastCommitTimeMicros: bigint | null;
  sourceId: bigint | null;
  epoch: number;
}

/** The standby's own record of what it has applied (migrations/standby/001_apply_position.sql). */
export async function readPosition(
  client: pg.Client,
  topic: string,
  partition: number,
): Promise<ApplyPosition | null> {
  const result = await client.query<{
    next_offset: string;
    last_commit_lsn: string;
    commit_micros: string | null;
    source_id: string | null;
    epoch: number;
  }>(
    `SELECT next_offset::text, last_commit_lsn::text,
            (extract(epoch FROM last_commit_time) * 1000000)::bigint::text AS commit_micros,
            source_id, epoch
       FROM diffrelay.apply_position WHERE topic = $1 AND partition = $2`,
    [topic, partition],
  );
  const row = result.rows[0];
  if (!row) return null;
  return {
    topic,
    partition,
    nextOffset: BigInt(row.next_offset),
    lastCommitLsn: parseLsn(row.last_commit_lsn),
    lastCommitTimeMicros: row.commit_micros === null ? null : BigInt(row.commit_micros),
    sourceId: row.source_id === null ? null : BigInt(`0x${row.source_id}`),
    epoch: row.epoch,
  };
}

/** Written inside the transaction that applied the changes it covers, never on its own. */
export async function writePosition(
  client: pg.Client,
  standbyName: string,
  position: ApplyPosition,
): Promise<void> {
  await client.query({
    name: "diffrelay_write_position",
    text: `INSERT INTO diffrelay.apply_position
             (topic, partition, next_offset, last_commit_lsn, last_commit_time, source_id, epoch, standby_name, updated_at)
           VALUES ($1, $2, $3, $4::pg_lsn, to_timestamp($5::double precision / 1000000), $6, $7, $8, now())
           ON CONFLICT (topic, partition) DO UPDATE SET
             next_offset = EXCLUDED.next_offset, last_commit_lsn = EXCLUDED.last_commit_lsn,
             last_commit_time = EXCLUDED.last_commit_time, source_id = EXCLUDED.source_id,
             epoch = EXCLUDED.epoch, standby_name = EXCLUDED.standby_name, updated_at = now()`,
    values: [
      position.topic,
      position.partition,
      position.nextOffset.toString(),
      formatLsn(position.lastCommitLsn),
      position.lastCommitTimeMicros === null ? null : position.lastCommitTimeMicros.toString(),
      position.sourceId === null ? null : position.sourceId.toString(16).padStart(16, "0"),
      position.epoch,
      standbyName,
    ],
  });
}
