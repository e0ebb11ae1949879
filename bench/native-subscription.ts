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

  async create(tables: string[], streaming: boolean): Promise<void> {
    await sql(this.primary, `CREATE PUBLICATION ${this.name} FOR TABLE ${tables.join(", ")}`);
    // libpq accepts the same URI the bench uses; the stack's role is a superuser with REPLICATION.
    const conninfo = this.primary.replaceAll("'", "''");
    await sql(
      this.standby,
      `CREATE SUBSCRIPTION ${this.name} CONNECTION '${conninfo}' PUBLICATION ${this.name} WITH (copy_data = false, streaming = ${streaming ? "on" : "off"})`,
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
