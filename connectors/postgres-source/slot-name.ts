import { createHash } from "node:crypto";
import type pg from "pg";

/** The slot name diffrelay used before it included the database; still found, see resolveCaptureSlot. */
export const LEGACY_SLOT_NAME = "diffrelay";

/**
 * Slots are server-wide while a capture follows one database, so the default
 * names the database: a second database on the same primary gets its own slot
 * without flags. Slot names allow [a-z0-9_] and 63 bytes; a name that had to be
 * changed to fit gets a hash of the real one, so "App" and "app" do not share.
 */
export function defaultSlotName(database: string): string {
  const cleaned = database.toLowerCase().replace(/[^a-z0-9_]/g, "_");
  const candidate = `diffrelay_${cleaned}`;
  if (cleaned === database && candidate.length <= 63) return candidate;
  const hash = createHash("sha256").update(database, "utf8").digest("hex").slice(0, 8);
  return `${candidate.slice(0, 63 - 9)}_${hash}`;
}

/**
 * The capture's slot on this source: the configured one, else the default for
 * this database, except that a slot under the old default name that belongs to
 * this database (and no slot under the new name) is still used, with a note,
 * so upgrading does not start a second slot and lose the first one's position.
 * Every command that reads the capture's slot (capture, migrate, seed, verify,
 * status, doctor, promote) resolves it here, so they agree.
 */
export async function resolveCaptureSlot(
  client: pg.ClientBase,
  configured: string | undefined,
  note: (message: string) => void = () => undefined,
): Promise<string> {
  if (configured) return configured;
  const { rows } = await client.query<{ db: string; legacy: boolean }>(
    `SELECT current_database() AS db,
            EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots
                     WHERE slot_name = $1 AND database = current_database()) AS legacy`,
    [LEGACY_SLOT_NAME],
  );
  const db = rows[0]?.db as string;
  const derived = defaultSlotName(db);
  const exists = await client.query("SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = $1", [
    derived,
  ]);
  if (exists.rowCount === 0 && rows[0]?.legacy) {
    note(
      `using the existing slot "${LEGACY_SLOT_NAME}" of database "${db}" (the old default name); the default is now "${derived}". Pass --slot ${LEGACY_SLOT_NAME} to keep it explicitly`,
    );
    return LEGACY_SLOT_NAME;
  }
  return derived;
}
