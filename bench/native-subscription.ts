// PostgreSQL's built-in logical replication under test: a publication on the primary and a
// subscription on standby2 (copy_data = false: the run seeds both sides with the same rows).
import { sql } from "./db.js";

export class NativeSubscription {
  constructor(
    readonly primary: string,
    readonly standby: string,
    /** Publication, subscription and (by PostgreSQL's default) slot share this name. */
    readonly name: string,
  ) {}

  get publication(): string {
    return this.name;
  }

  /**
   * With `streaming`, a large transaction goes to the subscriber while it runs: applied by a
   * parallel apply worker as it arrives from PostgreSQL 16 on (`streaming = parallel`, native's
   * fastest), spooled and applied at commit before that (`on`).
   */
  async create(tables: string[], streaming: boolean): Promise<void> {
    await sql(this.primary, `CREATE PUBLICATION ${this.name} FOR TABLE ${tables.join(", ")}`);
    // libpq accepts the same URI the bench uses; the stack's role is a superuser with REPLICATION.
    const conninfo = this.primary.replaceAll("'", "''");
    const mode = streaming ? await nativeStreamingMode(this.standby) : "off";
    await sql(
      this.standby,
      `CREATE SUBSCRIPTION ${this.name} CONNECTION '${conninfo}' PUBLICATION ${this.name} WITH (copy_data = false, streaming = ${mode})`,
    );
  }

  /** The walsender streaming to the subscription, on the primary. */
  async walsenderPid(): Promise<number | undefined> {
    const rows = await sql<{ pid: number | null }>(
      this.primary,
      "SELECT active_pid AS pid FROM pg_replication_slots WHERE slot_name = $1",
      [this.name],
    );
    return rows[0]?.pid ?? undefined;
  }

  /** The subscription's apply worker on the standby (table-sync workers have a relid). */
  async applyWorkerPid(): Promise<number | undefined> {
    const rows = await sql<{ pid: number | null }>(
      this.standby,
      "SELECT pid FROM pg_stat_subscription WHERE subname = $1 AND relid IS NULL",
      [this.name],
    );
    return rows[0]?.pid ?? undefined;
  }

  /** Drops the subscription, which also drops its slot on the primary, then the publication. */
  async drop(): Promise<void> {
    await sql(this.standby, `DROP SUBSCRIPTION IF EXISTS ${this.name}`);
    await sql(this.primary, `DROP PUBLICATION IF EXISTS ${this.name}`);
  }
}

/** How native replication streams a large transaction to this subscriber at best: `parallel` or `on`. */
export async function nativeStreamingMode(subscriber: string): Promise<"parallel" | "on"> {
  const [row] = await sql<{ v: number }>(
    subscriber,
    "SELECT current_setting('server_version_num')::int AS v",
  );
  return (row?.v ?? 0) >= 160000 ? "parallel" : "on";
}
