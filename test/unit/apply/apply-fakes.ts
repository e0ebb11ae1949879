import { BadFrameError } from "../../../connectors/postgres-standby/bad-frame-error.js";
import type { Frame } from "../../../connectors/postgres-standby/frame-decoder.js";
import type { PauseRecord } from "../../../connectors/postgres-standby/pause-gate.js";
import type { ApplyPosition } from "../../../connectors/postgres-standby/position-store.js";
import type { StandbyTransaction } from "../../../connectors/postgres-standby/standby-transaction.js";
import type { ApplyChange, Change, DdlChange, TransactionChunk } from "../../../src/change/change-model.js";
import type { Lsn } from "../../../src/change/lsn.js";
import { valueText } from "../../../src/change/text-bytes.js";
import { TEST_SESSION } from "../../support/capture-session-id.js";

export const SOURCE_ID = 0x1234_5678_9abc_def0n;
export const TOPIC = "diffrelay.app.data";
const rows = { relationId: 1, version: 1 };

/**
 * A standby as the grouper sees it: one transaction at a time, one
 * savepoint, rows visible only once committed, each commit with its position.
 * `log` keeps every call in order, the sink's and the pause record's too.
 */
export class FakeStandby implements StandbyTransaction {
  readonly log: string[] = [];
  readonly committedRows: string[] = [];
  readonly committedPositions: ApplyPosition[] = [];
  private open: string[] | null = null;
  private savepointAt: number | null = null;

  async begin(): Promise<void> {
    if (this.open) throw new Error("BEGIN inside a transaction");
    this.open = [];
    this.log.push("BEGIN");
  }

  async savepoint(): Promise<void> {
    this.savepointAt = this.inTransaction().length;
    this.log.push("SAVEPOINT");
  }

  async rollbackToSavepoint(): Promise<void> {
    if (this.savepointAt === null) throw new Error("no savepoint");
    this.inTransaction().length = this.savepointAt;
    this.log.push("ROLLBACK TO SAVEPOINT");
  }

  async releaseSavepoint(): Promise<void> {
    if (this.savepointAt === null) throw new Error("no savepoint");
    this.savepointAt = null;
    this.log.push("RELEASE SAVEPOINT");
  }

  async commit(position: ApplyPosition): Promise<void> {
    this.committedRows.push(...this.inTransaction());
    this.committedPositions.push({ ...position });
    this.open = null;
    this.savepointAt = null;
    this.log.push(`COMMIT next=${position.nextOffset} lsn=${position.lastCommitLsn}`);
  }

  async rollback(): Promise<void> {
    this.open = null;
    this.savepointAt = null;
    this.log.push("ROLLBACK");
  }

  /** The grouper's change sink. */
  readonly apply = async (changes: ApplyChange[]): Promise<void> => {
    const ids = changes.map((c) => (c.kind === "insert" ? String(c.values[0]) : c.kind));
    this.inTransaction().push(...ids);
    this.log.push(`apply ${ids.join(",")}`);
  };

  /** The grouper's sink for DDL that refuses a transaction block. */
  readonly applyAlone = async (change: DdlChange): Promise<void> => {
    if (this.open) throw new Error(`${change.command} inside a transaction block`);
    this.log.push(`alone ${change.command}`);
  };

  get lastCommitted(): ApplyPosition | undefined {
    return this.committedPositions[this.committedPositions.length - 1];
  }

  private inTransaction(): string[] {
    if (!this.open) throw new Error("outside a transaction");
    return this.open;
  }
}

/** diffrelay.apply_pause as the gate sees it; `points` are what successive polls read. */
export class FakePauseRecord implements PauseRecord {
  readonly calls: string[] = [];

  constructor(
    private readonly points: (Lsn | null)[],
    private readonly log: string[] = [],
  ) {}

  async markPausedAt(at: Lsn): Promise<void> {
    this.note(`paused at ${at}`);
  }

  async readPausePoint(): Promise<Lsn | null> {
    const point = this.points.length > 1 ? this.points.shift() : this.points[0];
    return point ?? null;
  }

  async liftPause(): Promise<void> {
    this.note("lifted");
  }

  private note(call: string): void {
    this.calls.push(call);
    this.log.push(call);
  }
}

export function position(fields: Partial<ApplyPosition> = {}): ApplyPosition {
  return {
    topic: TOPIC,
    partition: 0,
    nextOffset: 0n,
    lastCommitLsn: 0n,
    lastCommitTimeMicros: null,
    sourceId: SOURCE_ID,
    epoch: 0,
    ...fields,
  };
}

/** A chunk of the transaction committed at `commitLsn` inserting one row per id. */
export function chunk(
  commitLsn: Lsn,
  ids: number[],
  fields: { chunk?: number; finalChunk?: boolean } = {},
): TransactionChunk {
  return {
    header: {
      commitLsn,
      commitTimeMicros: 1_700_000_000_000_000n + commitLsn,
      xid: Number(commitLsn),
      chunk: fields.chunk ?? 0,
      finalChunk: fields.finalChunk ?? true,
    },
    changes: ids.map((id) => ({ kind: "insert", relation: rows, values: [String(id)] })),
  };
}

/** A source transaction that ran one DDL command. */
export function ddlChunk(commitLsn: Lsn, command: string): TransactionChunk {
  const base = chunk(commitLsn, []);
  return { ...base, changes: [{ kind: "ddl", searchPath: "public", command }] };
}

export function frame(offset: number, ...chunks: TransactionChunk[]): Frame {
  return {
    kind: "transactions",
    offset: BigInt(offset),
    message: { envelope: { sourceId: SOURCE_ID, epoch: 0 }, session: TEST_SESSION, chunks },
  };
}

export function badFrame(offset: number): Frame {
  return {
    kind: "bad",
    offset: BigInt(offset),
    value: Buffer.from("junk"),
    error: new BadFrameError(TOPIC, 0, String(offset), "does not decode: junk"),
  };
}

/** A change as the applier decoded it, an insert's values as text: to compare with expected changes. */
export function withTextValues(change: ApplyChange): Change {
  return change.kind === "insert" ? { ...change, values: change.values.map(valueText) } : change;
}
