import type pg from "pg";
import type { Change, TransactionChunk } from "../../src/change/change-model.js";
import type { Lsn } from "../../src/change/lsn.js";
import { formatLsn } from "../../src/change/lsn.js";
import { type DecodedDataMessage, decodeDataMessage } from "../../src/wire/data-message.js";
import { WireFormatError } from "../../src/wire/wire-format-error.js";
import type { ApplyMetrics } from "./apply-metrics.js";
import { BadFrameError } from "./bad-frame-error.js";
import type { SourcePosition } from "./drift-error.js";
import { type ApplyPosition, writePosition } from "./position-store.js";
import { orderByTable } from "./table-order.js";

/** Applies a list of changes inside the caller's standby transaction. */
export type ChangeSink = (client: pg.Client, changes: Change[], positions: SourcePosition[]) => Promise<void>;

export interface TransactionGrouperOptions {
  client: pg.Client;
  standbyName: string;
  position: ApplyPosition;
  maxRowsPerTransaction: number;
  maxGroupMs: number;
  /** Changes buffered before they are handed to the sink (bounds memory on huge transactions). */
  maxPendingChanges: number;
  apply: ChangeSink;
  metrics: ApplyMetrics;
  /**
   * Called before the first transaction at or after `pauseBefore` (commit LSN
   * `next`), with the group committed; resolves when the pause is lifted, with
   * the next pause point if verify moved it beyond `next` (diffrelay verify).
   */
  pause: (lastCommitLsn: Lsn, next: Lsn) => Promise<Lsn | null>;
  /**
   * When set, a message that does not decode (or comes from another source)
   * goes here, durably, and is stepped over instead of stopping the applier.
   */
  deadLetter?: (value: Buffer | null, offset: bigint, problem: string) => Promise<void>;
  /** Resolves the source id this standby follows on first sight, when its position has none yet. */
  expectSource: (sourceId: bigint, epoch: number) => void;
}

interface OpenChunkedTransaction {
  commitLsn: Lsn;
  nextChunk: number;
}

/**
 * Turns the topic's messages into standby transactions. Each source
 * transaction is applied whole and once: duplicates (commit LSN not above the
 * last applied one) are skipped; a chunked transaction stays inside one
 * standby transaction, under a savepoint, so that a capture restart that
 * sends its chunks again simply starts it over. Consecutive transactions are
 * grouped into one standby transaction, bounded by rows and time, and the
 * position commits with them.
 */
export class TransactionGrouper {
  private readonly client: pg.Client;
  private position: ApplyPosition;
  private inTransaction = false;
  private open: OpenChunkedTransaction | null = null;
  private groupStartedAt = 0;
  private groupRows = 0;
  private groupCommitTimes: bigint[] = [];
  private pendingChanges: Change[] = [];
  private pendingPositions: SourcePosition[] = [];
  /** Set from diffrelay.apply_pause: stop before the first transaction at or after this LSN. */
  pauseBefore: Lsn | null = null;

  constructor(private readonly options: TransactionGrouperOptions) {
    this.client = options.client;
    this.position = { ...options.position };
  }

  get current(): ApplyPosition {
    return this.position;
  }

  /** Handles one Kafka message; `lastOfBatch` lets a quiet topic commit at once. */
  async handleMessage(value: Buffer | null, offset: bigint, lastOfBatch: boolean): Promise<void> {
    let decoded: DecodedDataMessage;
    try {
      decoded = this.decode(value, offset);
    } catch (err) {
      // Diverted only between transactions: inside a chunked one, skipping a piece would apply half of it.
      if (!(err instanceof BadFrameError) || !this.options.deadLetter || this.open) throw err;
      await this.options.deadLetter(value, offset, err.message);
      this.options.metrics.deadLettered.inc();
      if (!this.inTransaction) {
        await this.client.query("BEGIN");
        this.inTransaction = true;
        this.groupStartedAt = Date.now();
      }
      this.position.nextOffset = offset + 1n;
      if (lastOfBatch || this.groupIsFull()) await this.commitGroup();
      return;
    }
    for (const chunk of decoded.chunks) await this.handleChunk(chunk, offset);
    if (this.open === null) {
      this.position.nextOffset = offset + 1n;
      if (this.inTransaction && (lastOfBatch || this.groupIsFull())) await this.commitGroup();
    }
  }

  /** Decodes a message and checks that it comes from the source this standby follows. */
  private decode(value: Buffer | null, offset: bigint): DecodedDataMessage {
    const { topic, partition } = this.position;
    if (!value) throw new BadFrameError(topic, partition, offset.toString(), "empty message");
    let decoded: DecodedDataMessage;
    try {
      decoded = decodeDataMessage(value);
    } catch (err) {
      const problem =
        err instanceof WireFormatError ? err.message : `does not decode: ${(err as Error).message}`;
      throw new BadFrameError(topic, partition, offset.toString(), problem, { cause: err });
    }
    const { envelope } = decoded;
    if (this.position.sourceId === null) {
      this.options.expectSource(envelope.sourceId, envelope.epoch);
      this.position.sourceId = envelope.sourceId;
      this.position.epoch = envelope.epoch;
    } else if (envelope.sourceId !== this.position.sourceId) {
      throw new BadFrameError(
        topic,
        partition,
        offset.toString(),
        `it comes from source ${hex(envelope.sourceId)}, but this standby follows source ${hex(this.position.sourceId)}`,
      );
    }
    return decoded;
  }

  /**
   * Commits every complete transaction applied so far and drops a chunked one
   * whose last chunk never came (its capture died before publishing it): used
   * when draining a topic that will get no more messages.
   */
  async commitCompleted(): Promise<void> {
    if (this.open) {
      this.pendingChanges = [];
      this.pendingPositions = [];
      await this.client.query("ROLLBACK TO SAVEPOINT diffrelay_chunked");
      this.open = null;
    }
    if (this.inTransaction) await this.commitGroup();
  }

  /** Rolls back whatever is not committed; the next session starts from the stored position. */
  async abandon(): Promise<void> {
    if (this.inTransaction) await this.client.query("ROLLBACK").catch(() => undefined);
    this.inTransaction = false;
  }

  private groupIsFull(): boolean {
    return (
      this.groupRows >= this.options.maxRowsPerTransaction ||
      Date.now() - this.groupStartedAt >= this.options.maxGroupMs
    );
  }

  private async handleChunk(chunk: TransactionChunk, offset: bigint): Promise<void> {
    const { header } = chunk;
    if (this.open) {
      if (header.commitLsn === this.open.commitLsn && header.chunk === this.open.nextChunk) {
        await this.applyChunk(chunk, offset);
        return;
      }
      if (header.chunk === 0) {
        // The capture restarted inside this transaction and sends it again from the start.
        await this.flushPending();
        await this.client.query("ROLLBACK TO SAVEPOINT diffrelay_chunked");
        this.open = null;
      } else {
        throw this.outOfSequence(chunk, offset);
      }
    }
    if (header.commitLsn <= this.position.lastCommitLsn) {
      if (header.chunk === 0) this.options.metrics.duplicatesSkipped.inc();
      return;
    }
    if (header.chunk !== 0) throw this.outOfSequence(chunk, offset);
    if (this.pauseBefore !== null && header.commitLsn >= this.pauseBefore) {
      if (this.inTransaction) await this.commitGroup();
      this.pauseBefore = await this.options.pause(this.position.lastCommitLsn, header.commitLsn);
    }
    if (!this.inTransaction) {
      await this.client.query("BEGIN");
      this.inTransaction = true;
      this.groupStartedAt = Date.now();
    }
    if (!header.finalChunk) {
      await this.flushPending();
      await this.client.query("SAVEPOINT diffrelay_chunked");
      this.open = { commitLsn: header.commitLsn, nextChunk: 0 };
    }
    await this.applyChunk(chunk, offset);
  }

  private async applyChunk(chunk: TransactionChunk, offset: bigint): Promise<void> {
    const { header } = chunk;
    const source: SourcePosition = {
      commitLsn: header.commitLsn,
      topic: this.position.topic,
      partition: this.position.partition,
      offset: offset.toString(),
    };
    for (const change of chunk.changes) {
      this.pendingChanges.push(change);
      this.pendingPositions.push(source);
    }
    this.groupRows += chunk.changes.length;
    if (this.pendingChanges.length >= this.options.maxPendingChanges) await this.flushPending();
    if (this.open) this.open.nextChunk = header.chunk + 1;
    if (header.finalChunk) {
      if (this.open) {
        await this.flushPending();
        await this.client.query("RELEASE SAVEPOINT diffrelay_chunked");
        this.open = null;
      }
      this.position.lastCommitLsn = header.commitLsn;
      this.position.lastCommitTimeMicros = header.commitTimeMicros;
      this.groupCommitTimes.push(header.commitTimeMicros);
    }
  }

  private async flushPending(): Promise<void> {
    if (this.pendingChanges.length === 0) return;
    const order = orderByTable(this.pendingChanges);
    const changes = order.map((i) => this.pendingChanges[i] as Change);
    const positions = order.map((i) => this.pendingPositions[i] as SourcePosition);
    this.pendingChanges = [];
    this.pendingPositions = [];
    await this.options.apply(this.client, changes, positions);
  }

  private async commitGroup(): Promise<void> {
    await this.flushPending();
    await writePosition(this.client, this.options.standbyName, this.position);
    await this.client.query("COMMIT");
    this.inTransaction = false;
    const { metrics } = this.options;
    const nowMicros = BigInt(Date.now()) * 1000n;
    for (const commitTime of this.groupCommitTimes)
      metrics.lagSeconds.observe(Number(nowMicros - commitTime) / 1e6);
    metrics.transactions.inc(this.groupCommitTimes.length);
    metrics.rows.inc(this.groupRows);
    metrics.groupRows.observe(this.groupRows);
    this.groupCommitTimes = [];
    this.groupRows = 0;
  }

  private outOfSequence(chunk: TransactionChunk, offset: bigint): BadFrameError {
    const expected = this.open
      ? `chunk ${this.open.nextChunk} of ${formatLsn(this.open.commitLsn)}`
      : "the first chunk of a transaction";
    return new BadFrameError(
      this.position.topic,
      this.position.partition,
      offset.toString(),
      `chunk ${chunk.header.chunk} of transaction ${formatLsn(chunk.header.commitLsn)} arrived where ${expected} was expected`,
    );
  }
}

function hex(id: bigint): string {
  return id.toString(16).padStart(16, "0");
}
