import type pg from "pg";
import type { DeferredCommands } from "./deferred-commands.js";
import { type ApplyPosition, commitWithPosition } from "./position-store.js";

/**
 * The standby transaction the grouper drives: one group of source
 * transactions, with one savepoint for a chunked source transaction that may
 * have to start over. The position commits with the group, never apart.
 */
export interface StandbyTransaction {
  begin(): Promise<void>;
  savepoint(): Promise<void>;
  rollbackToSavepoint(): Promise<void>;
  releaseSavepoint(): Promise<void>;
  commit(position: ApplyPosition): Promise<void>;
  rollback(): Promise<void>;
}

const SAVEPOINT = "diffrelay_chunked";

/**
 * With `deferred`, BEGIN costs no round trip of its own: it goes out in front
 * of the group's first exchange (its statements, a savepoint, or the commit),
 * as do the applier's deferred savepoint releases.
 */
export class PgStandbyTransaction implements StandbyTransaction {
  constructor(
    private readonly client: pg.ClientBase,
    private readonly standbyName: string,
    private readonly deferred: DeferredCommands | null = null,
  ) {}

  async begin(): Promise<void> {
    if (this.deferred) this.deferred.add("BEGIN");
    else await this.client.query("BEGIN");
  }

  async savepoint(): Promise<void> {
    await this.client.query(this.withDeferred(`SAVEPOINT ${SAVEPOINT}`));
  }

  async rollbackToSavepoint(): Promise<void> {
    await this.client.query(this.withDeferred(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`));
  }

  async releaseSavepoint(): Promise<void> {
    await this.client.query(this.withDeferred(`RELEASE SAVEPOINT ${SAVEPOINT}`));
  }

  async commit(position: ApplyPosition): Promise<void> {
    await commitWithPosition(this.client, this.standbyName, position, this.deferred?.take() ?? []);
  }

  async rollback(): Promise<void> {
    const unsent = this.deferred?.take() ?? [];
    // A BEGIN still deferred never reached the standby: there is no transaction to end.
    if (unsent.includes("BEGIN")) return;
    await this.client.query("ROLLBACK");
  }

  private withDeferred(sql: string): string {
    return this.deferred ? this.deferred.prefix(sql) : sql;
  }
}
