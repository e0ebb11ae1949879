import type pg from "pg";
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

export class PgStandbyTransaction implements StandbyTransaction {
  constructor(
    private readonly client: pg.ClientBase,
    private readonly standbyName: string,
  ) {}

  async begin(): Promise<void> {
    await this.client.query("BEGIN");
  }

  async savepoint(): Promise<void> {
    await this.client.query(`SAVEPOINT ${SAVEPOINT}`);
  }

  async rollbackToSavepoint(): Promise<void> {
    await this.client.query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}`);
  }

  async releaseSavepoint(): Promise<void> {
    await this.client.query(`RELEASE SAVEPOINT ${SAVEPOINT}`);
  }

  async commit(position: ApplyPosition): Promise<void> {
    await commitWithPosition(this.client, this.standbyName, position);
  }

  async rollback(): Promise<void> {
    await this.client.query("ROLLBACK");
  }
}
