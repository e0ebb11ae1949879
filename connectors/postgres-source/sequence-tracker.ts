import type pg from "pg";
import type { SequencePosition } from "../../src/change/change-model.js";
import { SEQUENCES_PREFIX } from "./logical-messages.js";

/**
 * Logical decoding carries no sequence values, so the capture publishes them:
 * every heartbeat it reads pg_sequences and writes the positions that moved as
 * one transactional logical message, which reaches the topic in commit order
 * like any transaction. pg_sequences.last_value is what the sequence has
 * logged, which is at or ahead of every value handed out, so a standby that
 * takes over never generates a value already used before this point. (promote
 * also advances sequences past the values present in their tables.)
 */
export class SequenceTracker {
  private readonly published = new Map<string, string>();

  async publishChanged(client: pg.Client): Promise<number> {
    const { rows } = await client.query<{ schema: string; name: string; last_value: string }>(
      `SELECT schemaname AS schema, sequencename AS name, last_value::text
         FROM pg_catalog.pg_sequences
        WHERE last_value IS NOT NULL AND schemaname <> 'diffrelay' AND schemaname NOT LIKE 'pg\\_temp%'`,
    );
    const moved: SequencePosition[] = [];
    for (const row of rows) {
      const key = JSON.stringify([row.schema, row.name]);
      if (this.published.get(key) === row.last_value) continue;
      moved.push({ schema: row.schema, name: row.name, lastValue: row.last_value, isCalled: true });
    }
    if (moved.length === 0) return 0;
    await client.query("SELECT pg_catalog.pg_logical_emit_message(true, $1, $2)", [
      SEQUENCES_PREFIX,
      JSON.stringify(moved),
    ]);
    for (const s of moved) this.published.set(JSON.stringify([s.schema, s.name]), s.lastValue);
    return moved.length;
  }
}
