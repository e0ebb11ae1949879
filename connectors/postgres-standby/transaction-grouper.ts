import type { ApplyChange, DdlChange, TransactionChunk } from "../../src/change/change-model.js";
import type { Lsn } from "../../src/change/lsn.js";
import { formatLsn } from "../../src/change/lsn.js";
import type { Envelope } from "../../src/wire/envelope.js";
import { AbandonedGroupError } from "./abandoned-group-error.js";
import type { ApplyMetrics } from "./apply-metrics.js";
import { BadFrameError } from "./bad-frame-error.js";
import { ApplyError, type SourcePosition } from "./drift-error.js";
import type { Frame } from "./frame-decoder.js";
import type { PauseGate } from "./pause-gate.js";
import { ddlReplay } from "./planning/ddl-replay.js";
import type { ApplyPosition } from "./position-store.js";
import { describeSession, SessionOrder } from "./session-order.js";
import type { StandbyTransaction } from "./standby-transaction.js";
import { orderByTable } from "./table-order.js";
import { ValueJoiner } from "./value-joiner.js";

/** Applies a list of changes inside the grouper's standby transaction. */
export type ChangeSink = (changes: ApplyChange[], positions: SourcePosition[]) => Promise<void>;

/**
 * Applies the group's last changes and commits it with `position` in one
 * exchange where it can: true when it did, false when the changes are applied
 * and the grouper still commits.
 */
export type CommittingChangeSink = (
  changes: ApplyChange[],
  positions: SourcePosition[],
  position: ApplyPosition,
) => Promise<boolean>;

/** Runs one DDL command on the standby connection outside any transaction block. */
export type AloneDdlSink = (change: DdlChange, position: SourcePosition) => Promise<void>;

export interface TransactionGrouperOptions {
  transaction: StandbyTransaction;
  position: ApplyPosition;
  maxRowsPerTransaction: number;
  maxGroupMs: number;
  /** Changes buffered before they are handed to the sink (bounds memory on huge transactions). */
  maxPendingChanges: number;
  apply: ChangeSink;
  /** Used instead of `apply` for the changes still pending when a group commits. */
  applyAndCommit?: CommittingChangeSink;
  /** For DDL that cannot run in a transaction block (planning/ddl-replay.ts). */
  applyAlone: AloneDdlSink;
  metrics: Pick<
    ApplyMetrics,
    | "deadLettered"
    | "duplicatesSkipped"
    | "staleSessionSkipped"
    | "lagSeconds"
    | "transactions"
    | "rows"
    | "groupRows"
  >;
  /** Told of each message skipped because a newer capture session already published (for the log). */
  onStaleMessage: (offset: bigint, problem: string) => void;
  /** Verify's pause: asked before each new source transaction, held with the group committed. */
  pauseGate: Pick<PauseGate, "mustPauseBefore" | "hold">;
  /**
   * When set, a message that does not decode (or comes from another source)
   * goes here, durably, and is stepped over instead of stopping the applier.
   */
  deadLetter?: (value: Buffer | null, offset: bigint, problem: string) => Promise<void>;
  /** Resolves the source id this standby follows on first sight, when its position has none yet. */
  expectSource: (sourceId: bigint, epoch: number) => void;
  now?: () => number;
}

function replayOf(change: ApplyChange): ReturnType<typeof ddlReplay>["kind"] | null {
  return change.kind === "ddl" ? ddlReplay(change.command).kind : null;
}

function runsAlone(change: ApplyChange): boolean {
  return replayOf(change) === "alone";
}

interface OpenChunkedTransaction {
  commitLsn: Lsn;
  nextChunk: number;
}

/** Joined values buffered before the pending changes go to the sink, whatever their count. */
const MAX_PENDING_JOINED_BYTES = 64 * 1024 * 1024;

/**
 * Turns the topic's decoded messages into standby transactions. Each source
 * transaction is applied whole and once: duplicates (commit LSN not above the
 * last applied one) are skipped; a chunked transaction stays inside one
 * standby transaction, under a savepoint, so that a capture restart that
 * sends its chunks again simply starts it over. Consecutive transactions are
 * grouped into one standby transaction, bounded by rows and time, and the
 * position commits with them.
 */
export class TransactionGrouper {
  /** The options' transaction and sinks, each refusing to send anything once the group is abandoned. */
  private readonly tx: StandbyTransaction;
  private readonly apply: ChangeSink;
  private readonly applyAndCommit: CommittingChangeSink | null;
  private readonly applyAloneSink: AloneDdlSink;
  private abandoned = false;
  /** The frame (or the drain's end) under way; abandon() waits for it. */
  private working: Promise<void> = Promise.resolve();
  private readonly now: () => number;
  private position: ApplyPosition;
  private inTransaction = false;
  private open: OpenChunkedTransaction | null = null;
  private groupStartedAt = 0;
  private groupRows = 0;
  private groupCommitTimes: bigint[] = [];
  private pendingChanges: ApplyChange[] = [];
  private pendingPositions: SourcePosition[] = [];
  private pendingJoinedBytes = 0;
  private readonly joiner = new ValueJoiner();
  private readonly sessions = new SessionOrder();
  /** The source transaction being applied added an enum value: its group must commit before the next one. */
  private commitAfterTransaction = false;

  constructor(private readonly options: TransactionGrouperOptions) {
    const tx = options.transaction;
    this.tx = {
      begin: this.refusingOnceAbandoned("BEGIN", () => tx.begin()),
      savepoint: this.refusingOnceAbandoned("SAVEPOINT", () => tx.savepoint()),
      rollbackToSavepoint: this.refusingOnceAbandoned("ROLLBACK TO SAVEPOINT", () =>
        tx.rollbackToSavepoint(),
      ),
      releaseSavepoint: this.refusingOnceAbandoned("RELEASE SAVEPOINT", () => tx.releaseSavepoint()),
      commit: this.refusingOnceAbandoned("COMMIT", (position: ApplyPosition) => tx.commit(position)),
      rollback: () => tx.rollback(),
    };
    this.apply = this.refusingOnceAbandoned("applying changes", options.apply);
    this.applyAndCommit = options.applyAndCommit
      ? this.refusingOnceAbandoned("applying changes with COMMIT", options.applyAndCommit)
      : null;
    this.applyAloneSink = this.refusingOnceAbandoned("applying DDL alone", options.applyAlone);
    this.now = options.now ?? Date.now;
    this.position = { ...options.position };
  }

  get current(): ApplyPosition {
    return this.position;
  }

  /** Handles one message of the topic; `lastOfBatch` lets a quiet topic commit at once. */
  handleFrame(frame: Frame, lastOfBatch: boolean): Promise<void> {
    return this.work(() => this.applyFrame(frame, lastOfBatch));
  }

  /**
   * Commits every complete transaction applied so far and drops a chunked one
   * whose last chunk never came (its capture died before publishing it): used
   * when draining a topic that will get no more messages.
   */
  commitCompleted(): Promise<void> {
    return this.work(() => this.commitCompletedTransactions());
  }

  /**
   * Rolls back whatever is not committed; the next session starts from the
   * stored position. It waits for the frame under way first: its statements go
   * out on the same connection, and one sent after the ROLLBACK would run
   * outside any transaction and commit on its own. From here on the grouper
   * refuses to send anything (AbandonedGroupError).
   */
  async abandon(): Promise<void> {
    this.abandoned = true;
    await this.working;
    // The session's connection is closed next, which rolls back just the same: a failed ROLLBACK loses nothing.
    if (this.inTransaction) await this.tx.rollback().catch(() => undefined);
    this.inTransaction = false;
  }

  private work(task: () => Promise<void>): Promise<void> {
    const running = this.abandoned ? Promise.reject(this.refusal("applying a message")) : task();
    // Only abandon() awaits `working`, to know the frame under way is done; its error reaches the caller
    // through `running`, returned below, so this copy may drop it.
    this.working = running.catch(() => undefined);
    return running;
  }

  private refusingOnceAbandoned<A extends unknown[], R>(
    statement: string,
    send: (...args: A) => Promise<R>,
  ): (...args: A) => Promise<R> {
    return (...args) => (this.abandoned ? Promise.reject(this.refusal(statement)) : send(...args));
  }

  private refusal(statement: string): AbandonedGroupError {
    const { topic, partition, nextOffset } = this.position;
    return new AbandonedGroupError(statement, topic, partition, nextOffset);
  }

  private async applyFrame(frame: Frame, lastOfBatch: boolean): Promise<void> {
    if (frame.kind === "bad") {
      await this.stepOver(frame, lastOfBatch);
      return;
    }
    this.followSource(frame.message.envelope);
    const { session } = frame.message;
    if (session !== null && this.sessions.isStale(session)) {
      // Not one chunk of it may be applied: it could interrupt or continue the newer session's transaction.
      this.options.metrics.staleSessionSkipped.inc();
      this.options.onStaleMessage(
        frame.offset,
        `skipped: it comes from ${describeSession(session)}, which a newer capture session followed; ` +
          "the newer session sends what it carried again",
      );
    } else {
      for (const chunk of frame.message.chunks) {
        const applying = this.handleChunk(chunk, frame.offset);
        if (applying) await applying;
      }
    }
    if (this.open === null) {
      this.position.nextOffset = frame.offset + 1n;
      if (this.inTransaction && (lastOfBatch || this.groupIsFull())) await this.commitGroup();
    }
  }

  private async commitCompletedTransactions(): Promise<void> {
    if (this.open) {
      this.pendingChanges = [];
      this.pendingPositions = [];
      this.pendingJoinedBytes = 0;
      this.joiner.reset();
      await this.tx.rollbackToSavepoint();
      this.open = null;
    }
    if (this.inTransaction) await this.commitGroup();
  }

  private async stepOver(frame: Frame & { kind: "bad" }, lastOfBatch: boolean): Promise<void> {
    // Diverted only between transactions: inside a chunked one, skipping a piece would apply half of it.
    if (!this.options.deadLetter || this.open) throw frame.error;
    await this.options.deadLetter(frame.value, frame.offset, frame.error.message);
    this.options.metrics.deadLettered.inc();
    await this.beginGroup();
    this.position.nextOffset = frame.offset + 1n;
    if (lastOfBatch || this.groupIsFull()) await this.commitGroup();
  }

  /** The frame decoder checked the source against this position; a position without one takes it now. */
  private followSource(envelope: Envelope): void {
    if (this.position.sourceId !== null) return;
    this.options.expectSource(envelope.sourceId, envelope.epoch);
    this.position.sourceId = envelope.sourceId;
    this.position.epoch = envelope.epoch;
  }

  private groupIsFull(): boolean {
    return (
      this.groupRows >= this.options.maxRowsPerTransaction ||
      this.now() - this.groupStartedAt >= this.options.maxGroupMs
    );
  }

  private async beginGroup(): Promise<void> {
    if (this.inTransaction) return;
    await this.tx.begin();
    this.inTransaction = true;
    this.groupStartedAt = this.now();
  }

  /**
   * Applies one chunk; undefined when it took no round trip. Nearly every chunk
   * is a whole transaction joining the open group (a catch-up handles tens of
   * thousands a second), which goes straight to applyChunk without a promise:
   * exactly what handleAnyChunk would do with it.
   */
  private handleChunk(chunk: TransactionChunk<ApplyChange>, offset: bigint): Promise<void> | undefined {
    const { header } = chunk;
    if (
      this.open === null &&
      this.inTransaction &&
      header.chunk === 0 &&
      header.finalChunk &&
      header.commitLsn > this.position.lastCommitLsn &&
      !this.options.pauseGate.mustPauseBefore(header.commitLsn) &&
      !chunk.changes.some(runsAlone)
    ) {
      return this.applyChunk(chunk, offset);
    }
    return this.handleAnyChunk(chunk, offset);
  }

  private async handleAnyChunk(chunk: TransactionChunk<ApplyChange>, offset: bigint): Promise<void> {
    const { header } = chunk;
    if (this.open) {
      if (header.commitLsn === this.open.commitLsn && header.chunk === this.open.nextChunk) {
        await this.applyChunk(chunk, offset);
        return;
      }
      if (this.isRepeatedContinuation(chunk)) {
        this.options.metrics.duplicatesSkipped.inc();
        return;
      }
      if (header.chunk !== 0) throw this.outOfSequence(chunk, offset);
      // The capture restarted inside this transaction and sends it again from the start.
      await this.flushPending();
      await this.tx.rollbackToSavepoint();
      this.joiner.reset();
      this.open = null;
    }
    if (header.commitLsn <= this.position.lastCommitLsn) {
      if (header.chunk === 0) this.options.metrics.duplicatesSkipped.inc();
      return;
    }
    if (header.chunk !== 0) throw this.outOfSequence(chunk, offset);
    const gate = this.options.pauseGate;
    if (gate.mustPauseBefore(header.commitLsn)) {
      if (this.inTransaction) await this.commitGroup();
      await gate.hold(this.position.lastCommitLsn, header.commitLsn);
    }
    if (chunk.changes.some(runsAlone)) {
      await this.applyAlone(chunk, offset);
      return;
    }
    // Open already for every transaction of a group but its first: no promise to await then.
    if (!this.inTransaction) await this.beginGroup();
    if (!header.finalChunk) {
      await this.flushPending();
      await this.tx.savepoint();
      this.open = { commitLsn: header.commitLsn, nextChunk: 0 };
    }
    await this.applyChunk(chunk, offset);
  }

  /**
   * A produce that was retried after the broker had appended it puts the same
   * message in the topic twice. Within the open transaction, a chunk it already
   * applied comes again; and a message that ended the previous transaction
   * brings that transaction's last chunk again. Both are the same bytes as what
   * was applied, so they are skipped. (A capture restart always resends from
   * chunk 0, which starts the open transaction over instead.)
   */
  private isRepeatedContinuation({ header }: TransactionChunk<ApplyChange>): boolean {
    const open = this.open;
    if (open === null || header.chunk === 0) return false;
    if (header.commitLsn === open.commitLsn) return header.chunk < open.nextChunk;
    return header.commitLsn <= this.position.lastCommitLsn;
  }

  /** Adds the chunk's changes to the group; undefined when that took no round trip. */
  private applyChunk(chunk: TransactionChunk<ApplyChange>, offset: bigint): Promise<void> | undefined {
    const source = this.sourceOf(chunk, offset);
    try {
      this.pendingJoinedBytes += this.joiner.join(chunk);
    } catch (err) {
      throw this.badChunk(chunk, offset, `does not join: ${(err as Error).message}`);
    }
    for (const change of chunk.changes) {
      this.pendingChanges.push(change);
      this.pendingPositions.push(source);
      if (replayOf(change) === "commit-after") this.commitAfterTransaction = true;
    }
    this.groupRows += chunk.changes.length;
    const full =
      this.pendingChanges.length >= this.options.maxPendingChanges ||
      this.pendingJoinedBytes >= MAX_PENDING_JOINED_BYTES;
    const final = chunk.header.finalChunk;
    if (full || (final && (this.open !== null || this.commitAfterTransaction))) {
      return this.finishChunk(chunk, offset, full);
    }
    this.advancePast(chunk, offset);
    if (final) this.markApplied(chunk);
    return undefined;
  }

  /** applyChunk's end where it takes round trips: a flush, the end of a chunked transaction, a commit. */
  private async finishChunk(
    chunk: TransactionChunk<ApplyChange>,
    offset: bigint,
    full: boolean,
  ): Promise<void> {
    if (full) await this.flushPending();
    this.advancePast(chunk, offset);
    if (!chunk.header.finalChunk) return;
    if (this.open) {
      await this.flushPending();
      await this.tx.releaseSavepoint();
      this.open = null;
    }
    this.markApplied(chunk);
    if (this.commitAfterTransaction) {
      // Mid-message is fine: the next offset stays at this message, and its
      // transactions up to here are skipped as duplicates on a restart.
      this.commitAfterTransaction = false;
      await this.commitGroup();
    }
  }

  /** The open transaction expects the next chunk; a final chunk must have used every value part. */
  private advancePast(chunk: TransactionChunk<ApplyChange>, offset: bigint): void {
    if (this.open) this.open.nextChunk = chunk.header.chunk + 1;
    if (chunk.header.finalChunk && !this.joiner.isEmpty) {
      throw this.badChunk(chunk, offset, "ends its transaction with VALUE_PART frames that no change used");
    }
  }

  /**
   * A source transaction holding DDL that refuses a transaction block: the
   * group before it commits, the commands run alone, then the position moves
   * past the transaction in a transaction of its own. A crash between the two
   * replays the commands, which ddlReplay made safe to repeat.
   */
  private async applyAlone(chunk: TransactionChunk<ApplyChange>, offset: bigint): Promise<void> {
    const { header } = chunk;
    const source = this.sourceOf(chunk, offset);
    if (this.inTransaction) await this.commitGroup();
    const others = chunk.changes.filter((change) => change.kind !== "ddl");
    if (!header.finalChunk || others.length > 0) {
      // PostgreSQL runs these statements in no transaction block on the source either, so this
      // is not a transaction the source can produce; applying part of it alone would split it.
      throw new ApplyError({
        schema: null,
        table: null,
        column: null,
        code: null,
        problem:
          "a source transaction holds a statement that cannot run in a transaction block together with other changes; apply the transaction's changes on the standby by hand, then re-seed it (diffrelay seed) or move its position past this commit",
        position: source,
        cause: null,
      });
    }
    for (const change of chunk.changes) await this.applyAloneSink(change as DdlChange, source);
    await this.beginGroup();
    this.markApplied(chunk);
    this.groupRows += chunk.changes.length;
    await this.commitGroup();
  }

  private sourceOf(chunk: TransactionChunk<ApplyChange>, offset: bigint): SourcePosition {
    const { topic, partition } = this.position;
    return { commitLsn: chunk.header.commitLsn, topic, partition, offset: offset.toString() };
  }

  /** The position moves past the source transaction; it commits with the group. */
  private markApplied({ header }: TransactionChunk<ApplyChange>): void {
    this.position.lastCommitLsn = header.commitLsn;
    this.position.lastCommitTimeMicros = header.commitTimeMicros;
    this.groupCommitTimes.push(header.commitTimeMicros);
  }

  /** Hands the pending changes to the sink; with `commitAt`, true once they committed with it. */
  private async flushPending(commitAt?: ApplyPosition): Promise<boolean> {
    if (this.pendingChanges.length === 0) return false;
    const order = orderByTable(this.pendingChanges);
    const changes = order.map((i) => this.pendingChanges[i] as ApplyChange);
    const positions = order.map((i) => this.pendingPositions[i] as SourcePosition);
    this.pendingChanges = [];
    this.pendingPositions = [];
    this.pendingJoinedBytes = 0;
    if (commitAt && this.applyAndCommit) return this.applyAndCommit(changes, positions, { ...commitAt });
    await this.apply(changes, positions);
    return false;
  }

  private async commitGroup(): Promise<void> {
    if (!(await this.flushPending(this.position))) await this.tx.commit(this.position);
    this.inTransaction = false;
    const { metrics } = this.options;
    const nowMicros = BigInt(this.now()) * 1000n;
    for (const commitTime of this.groupCommitTimes)
      metrics.lagSeconds.observe(Number(nowMicros - commitTime) / 1e6);
    metrics.transactions.inc(this.groupCommitTimes.length);
    metrics.rows.inc(this.groupRows);
    metrics.groupRows.observe(this.groupRows);
    this.groupCommitTimes = [];
    this.groupRows = 0;
  }

  private outOfSequence(chunk: TransactionChunk<ApplyChange>, offset: bigint): BadFrameError {
    const expected = this.open
      ? `chunk ${this.open.nextChunk} of ${formatLsn(this.open.commitLsn)}`
      : "the first chunk of a transaction";
    return this.badChunk(chunk, offset, `arrived where ${expected} was expected`);
  }

  private badChunk(chunk: TransactionChunk<ApplyChange>, offset: bigint, problem: string): BadFrameError {
    return new BadFrameError(
      this.position.topic,
      this.position.partition,
      offset.toString(),
      `chunk ${chunk.header.chunk} of transaction ${formatLsn(chunk.header.commitLsn)} ${problem}`,
    );
  }
}
