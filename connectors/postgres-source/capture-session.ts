import type { TransactionHeader, ValueBytes } from "../../src/change/change-model.js";
import { formatLsn, type Lsn } from "../../src/change/lsn.js";
import type { RelationSchema } from "../../src/change/relation-schema.js";
import type { TextBytes } from "../../src/change/text-bytes.js";
import {
  type MessageSink,
  OrderedPublisher,
  type ProduceAck,
  PublishError,
} from "../../src/kafka/ordered-publisher.js";
import type { SchemaSink } from "../../src/kafka/schema-topic.js";
import {
  type CaptureSessionId,
  changeByteBound,
  DataMessageBuilder,
  VALUE_PART_OVERHEAD_BYTES,
  valueByteBound,
  valuesInFrameOrder,
} from "../../src/wire/data-message.js";
import { toMessageChange } from "./logical-messages.js";
import type { PgoutputMessage, RelationMessage } from "./pgoutput/pgoutput-decoder.js";
import { type CapturedChange, type KnownRelation, toChange } from "./row-differ.js";
import { ChangeTooLargeError } from "./unpublishable-change.js";

/** A source transaction whose final chunk is in a message, with what confirming it means. */
export interface CompletedTransaction {
  commitLsn: Lsn;
  /** The slot may be confirmed up to here once this transaction is durable. */
  endLsn: Lsn;
  commitTimeMicros: bigint;
  rows: number;
}

export interface CaptureSessionOptions {
  /** The data topic. */
  sink: MessageSink;
  sourceId: bigint;
  epoch: number;
  /** Written into every message, so that the applier can tell this session's messages from a stale one's. */
  session: CaptureSessionId;
  /** A message is closed at this size (capture.maxMessageBytes, at most half of messageLimitBytes). */
  maxMessageBytes: number;
  /** No message may be larger: the topic's max.message.bytes less headroom (see message-limits.ts). */
  messageLimitBytes: number;
  /** Bytes of one produce request at most (the request is one record batch, so within the topic's limit too). */
  maxRequestBytes: number;
  maxPendingBytes: number;
  /** The limit the pgoutput decoder left values above undecoded; named in the error that refuses them. */
  maxValueBytes: number;
  /**
   * How long a transaction committed while Kafka is idle waits for more before
   * its message is sealed; 0 seals it once what has already been received is handled.
   */
  lingerMs: number;
  schemas: SchemaSink;
  /** Reads a relation's definition from the source catalog when pgoutput announces it. */
  loadRelation: (message: Extract<PgoutputMessage, { tag: "relation" }>) => Promise<RelationSchema>;
  /** Called in commit order once transactions are durable in Kafka. */
  onDurable: (completed: CompletedTransaction[], bytes: number, acked: ProduceAck) => void;
  /**
   * Called once, at once, when Kafka did not take a message: the session is
   * over (every later handle() rejects), nothing after the last onDurable will
   * be acknowledged, and the replication stream must end with this error so
   * that a new session resends from the slot.
   */
  onFailure: (error: Error) => void;
}

/**
 * A change whose values are its own: copies of values that may be ranges of
 * the replication socket's receive buffer, which pg reuses for later reads.
 * For a change that waits (for Kafka, across messages) before it is written.
 */
function ownCopy(change: CapturedChange): CapturedChange {
  const copy = (values: readonly ValueBytes[]) => values.map((v) => (v === null ? null : v.copy()));
  switch (change.kind) {
    case "insert":
      return { ...change, values: copy(change.values) };
    case "update":
      return { ...change, key: copy(change.key), values: copy(change.values) };
    case "delete":
      return { ...change, key: copy(change.key) };
    default:
      return change;
  }
}

/**
 * Where a piece of a value's UTF-8 that starts at `start` and takes at most
 * `room` bytes ends: never inside a character, so that the pieces are those
 * the text's own encoding would give (TextEncoder.encodeInto's).
 */
function pieceEnd(value: TextBytes, start: number, room: number): number {
  let end = start + room;
  if (end >= value.length) return value.length;
  // A continuation byte (10xxxxxx) is inside a character: step back to where it starts.
  while (end > start && ((value.buf[value.start + end] as number) & 0xc0) === 0x80) end--;
  return end;
}

/** No value joined from parts: shared, as nearly every change has it. */
const NONE_JOINED: ReadonlySet<number> = new Set();

/** What one sealed message confirms once durable, and where it starts (for errors). */
interface MessageReceipt {
  /** Commit LSN of the first transaction (or chunk of one) in the message. */
  firstCommitLsn: Lsn;
  /** Transactions whose final chunk is in this message. */
  completed: CompletedTransaction[];
}

const DIFFRELAY_SCHEMA = "diffrelay";

interface OpenTransaction {
  header: TransactionHeader;
  begun: boolean;
  rows: number;
}

/**
 * One replication session: decoded pgoutput messages in, sealed Kafka
 * messages out. Small transactions share a message; a transaction larger than
 * maxMessageBytes is cut into chunks, so memory stays bounded by
 * maxPendingBytes plus one message whatever the transaction's size.
 */
export class CaptureSession {
  private readonly builder: DataMessageBuilder;
  private readonly publisher: OrderedPublisher<MessageReceipt>;
  private readonly relations = new Map<number, KnownRelation>();
  private readonly ignored = new Set<number>();
  private open: OpenTransaction | null = null;
  private completedInMessage: CompletedTransaction[] = [];
  /** Commit LSN of the first transaction (or chunk) in the message being built. */
  private firstInMessage: Lsn | null = null;
  private flushAtCommit = false;
  private cancelLinger: (() => void) | null = null;

  constructor(private readonly options: CaptureSessionOptions) {
    if (options.maxMessageBytes * 2 > options.messageLimitBytes) {
      throw new RangeError(
        `maxMessageBytes ${options.maxMessageBytes} is above half the message limit ${options.messageLimitBytes}`,
      );
    }
    this.builder = new DataMessageBuilder(
      { sourceId: options.sourceId, epoch: options.epoch },
      options.session,
    );
    this.publisher = new OrderedPublisher<MessageReceipt>({
      sink: options.sink,
      maxRequestBytes: options.maxRequestBytes,
      maxPendingBytes: options.maxPendingBytes,
      onDurable: (receipts, bytes, acked) =>
        options.onDurable(
          receipts.flatMap((r) => r.completed),
          bytes,
          acked,
        ),
      onIdle: () => this.flush(),
      onFailure: (error, unacknowledged) => this.fail(error, unacknowledged),
    });
  }

  /**
   * Nothing received is waiting to become durable: the slot may move to the
   * server's position. Never true once the session has failed, because what it
   * received since the last acknowledgement is lost with it.
   */
  isIdle(): boolean {
    return (
      this.open === null &&
      this.builder.isEmpty() &&
      this.completedInMessage.length === 0 &&
      this.publisher.idle
    );
  }

  /**
   * Takes one message, in stream order. Undefined when done with it; a promise
   * when it must wait (for Kafka to make room, for a relation's schema): then
   * the next message waits for it too. Throws (or rejects) when the session has
   * failed or the stream breaks its own rules.
   *
   * Row values may be views of a buffer that is reused once handle() returns:
   * a change that must wait to be written is copied first (see ownCopy).
   */
  handle(message: PgoutputMessage<TextBytes>): Promise<void> | undefined {
    // A failed session takes nothing more: it could never confirm it.
    this.publisher.throwIfFailed();
    switch (message.tag) {
      case "begin":
        this.open = {
          header: {
            commitLsn: message.finalLsn,
            commitTimeMicros: message.commitTimeMicros,
            xid: message.xid,
            chunk: 0,
            finalChunk: false,
          },
          begun: false,
          rows: 0,
        };
        return;
      case "relation":
        if (message.schema === DIFFRELAY_SCHEMA) {
          // diffrelay's own bookkeeping on the source is published by FOR ALL TABLES but is not user data.
          this.ignored.add(message.relationId);
          return;
        }
        return this.learnRelation(message);
      case "insert":
      case "update":
      case "delete":
        if (this.ignored.has(message.relationId)) return;
        return this.add(
          toChange(
            message,
            this.relation(message.relationId),
            this.open?.header.commitLsn ?? 0n,
            this.options.maxValueBytes,
          ),
        );
      case "truncate": {
        const ids = message.relationIds.filter((id) => !this.ignored.has(id));
        if (ids.length === 0) return;
        return this.add({
          kind: "truncate",
          relations: ids.map((id) => this.relation(id).ref),
          cascade: message.cascade,
          restartIdentity: message.restartIdentity,
        });
      }
      case "commit":
        return this.commit(message.endLsn);
      case "message": {
        // Non-transactional ones (heartbeats) are the service's; other prefixes are not ours.
        const change = toMessageChange(message);
        return change ? this.add(change) : undefined;
      }
      case "origin":
      case "type":
        return;
    }
  }

  private relation(relationId: number): KnownRelation {
    const known = this.relations.get(relationId);
    if (!known)
      throw new Error(`pgoutput sent a change for relation ${relationId} before its Relation message`);
    return known;
  }

  private async learnRelation(message: RelationMessage): Promise<void> {
    const schema = await this.options.loadRelation(message);
    const ref = await this.options.schemas.ensure(schema);
    this.relations.set(message.relationId, { schema, ref });
  }

  private add(change: CapturedChange): Promise<void> | undefined {
    const open = this.open;
    if (!open) throw new Error(`pgoutput sent a ${change.kind} outside a transaction`);
    if (!open.begun) {
      this.firstInMessage ??= open.header.commitLsn;
      this.builder.beginTransaction(open.header);
      open.begun = true;
    }
    // Bounded once: with nothing joined (nearly every change) the frame's bound is the change's.
    const frameBytes = changeByteBound(change);
    const joined = this.joinedPositions(change, frameBytes, open);
    if (joined.size > 0) return this.addWithValueParts(ownCopy(change), joined, open);
    if (this.builder.byteLength + frameBytes > this.options.messageLimitBytes) {
      const room = this.cut(open);
      if (room) {
        const kept = ownCopy(change);
        return room.then(() => this.addFrame(kept, joined, open));
      }
    }
    return this.addFrame(change, joined, open);
  }

  private async addWithValueParts(
    change: CapturedChange,
    joined: ReadonlySet<number>,
    open: OpenTransaction,
  ): Promise<void> {
    const values = valuesInFrameOrder(change);
    for (const position of joined) await this.addValueParts(values[position] as TextBytes, open);
    const frameBytes = changeByteBound(change, joined);
    if (this.builder.byteLength + frameBytes > this.options.messageLimitBytes) await this.cut(open);
    await this.addFrame(change, joined, open);
  }

  private addFrame(
    change: CapturedChange,
    joined: ReadonlySet<number>,
    open: OpenTransaction,
  ): Promise<void> | undefined {
    this.builder.addChange(change, joined);
    if (change.kind === "insert" || change.kind === "update" || change.kind === "delete") open.rows++;
    if (this.builder.byteLength >= this.options.maxMessageBytes) return this.cut(open);
    return undefined;
  }

  /**
   * The values of a change too large for a message that go out as VALUE_PART
   * frames before it: the largest ones, until the rest of its frame takes at
   * most a quarter of the message limit, so that it always fits next to what
   * is in its message below maxMessageBytes.
   */
  private joinedPositions(change: CapturedChange, bound: number, open: OpenTransaction): ReadonlySet<number> {
    const quarter = this.options.messageLimitBytes / 4;
    let bytes = bound;
    if (bytes <= quarter) return NONE_JOINED;
    const joined = new Set<number>();
    const values = valuesInFrameOrder(change);
    const largestFirst = values
      .map((value, position) => ({ position, bytes: valueByteBound(value), value }))
      .filter((v) => v.value !== null)
      .sort((a, b) => b.bytes - a.bytes);
    for (const v of largestFirst) {
      if (bytes <= quarter) break;
      joined.add(v.position);
      bytes -= v.bytes - 1;
    }
    if (bytes > quarter) {
      throw new ChangeTooLargeError(
        this.describe(change),
        open.header.commitLsn,
        bytes,
        this.options.messageLimitBytes,
      );
    }
    // In frame order: the consumer fills joined values in the order their pieces completed.
    return new Set([...joined].sort((a, b) => a - b));
  }

  private describe(change: CapturedChange): string {
    if (change.kind === "ddl") return `the DDL command ${JSON.stringify(change.command.slice(0, 80))}...`;
    if (change.kind === "truncate" || change.kind === "sequence") return `a ${change.kind} of many relations`;
    const schema = this.relations.get(change.relation.relationId)?.schema;
    return `a ${change.kind} on ${schema ? `${schema.schema}.${schema.table}` : `relation ${change.relation.relationId}`}`;
  }

  /** Streams a value's UTF-8 out in pieces, cutting messages as they fill: one message is held at a time. */
  private async addValueParts(value: TextBytes, open: OpenTransaction): Promise<void> {
    const minimumPiece = this.options.maxMessageBytes / 4;
    let read = 0;
    while (read < value.length) {
      let room = this.options.maxMessageBytes - this.builder.byteLength - VALUE_PART_OVERHEAD_BYTES;
      if (room < minimumPiece) {
        await this.cut(open);
        room = this.options.maxMessageBytes - this.builder.byteLength - VALUE_PART_OVERHEAD_BYTES;
      }
      const end = pieceEnd(value, read, room);
      this.builder.addValuePart(
        value.buf.subarray(value.start + read, value.start + end),
        end >= value.length,
      );
      read = end;
    }
  }

  /** Cuts the open transaction here: this chunk goes out, the next message continues it. */
  private cut(open: OpenTransaction): Promise<void> | undefined {
    this.seal();
    open.header = { ...open.header, chunk: open.header.chunk + 1 };
    this.firstInMessage = open.header.commitLsn;
    this.builder.beginTransaction(open.header);
    return this.publisher.waitForCapacity();
  }

  private commit(endLsn: Lsn): Promise<void> | undefined {
    const open = this.open;
    if (!open) throw new Error("pgoutput sent Commit without Begin");
    this.open = null;
    // A transaction without changes still belongs to this message, as a receipt.
    this.firstInMessage ??= open.header.commitLsn;
    if (open.begun) this.builder.markFinalChunk();
    this.completedInMessage.push({
      commitLsn: open.header.commitLsn,
      endLsn,
      commitTimeMicros: open.header.commitTimeMicros,
      rows: open.rows,
    });
    if (this.flushAtCommit || this.builder.byteLength >= this.options.maxMessageBytes / 2) {
      this.flush();
    } else if (this.publisher.idle && this.cancelLinger === null) {
      // While a request is in flight, onIdle flushes instead.
      this.cancelLinger = this.scheduleLinger(() => {
        this.cancelLinger = null;
        this.flush();
      });
    }
    return this.publisher.waitForCapacity();
  }

  /**
   * With no wait, the message is sealed on the event loop's next turn: the
   * transactions already read from the replication socket share it, and none
   * waits for one that has not arrived.
   */
  private scheduleLinger(seal: () => void): () => void {
    if (this.options.lingerMs === 0) {
      const immediate = setImmediate(seal);
      return () => clearImmediate(immediate);
    }
    const timer = setTimeout(seal, this.options.lingerMs);
    return () => clearTimeout(timer);
  }

  /** Seals what has accumulated, unless a transaction is open: then at its commit. */
  private flush(): void {
    if (this.open) {
      this.flushAtCommit = true;
      return;
    }
    this.flushAtCommit = false;
    if (this.completedInMessage.length === 0 && this.builder.isEmpty()) return;
    this.seal();
  }

  private seal(): void {
    const completed = this.completedInMessage;
    const firstCommitLsn = this.firstInMessage;
    if (firstCommitLsn === null) throw new Error("sealing a message that holds no transaction");
    this.completedInMessage = [];
    this.firstInMessage = null;
    if (this.builder.isEmpty()) {
      // Transactions without published changes: durable as soon as all before them are.
      this.publisher.publishReceiptOnly({ firstCommitLsn, completed });
      return;
    }
    this.publisher.publish({ value: this.builder.finish(), receipt: { firstCommitLsn, completed } });
  }

  private fail(error: PublishError, unacknowledged: MessageReceipt[]): void {
    // A failed publisher takes no more messages: the linger timer must not try to seal one.
    this.cancelLinger?.();
    this.cancelLinger = null;
    const first = unacknowledged[0]?.firstCommitLsn;
    const where =
      first === undefined
        ? ""
        : `; the first transaction not acknowledged commits at LSN ${formatLsn(first)}, and the slot stays before it`;
    this.options.onFailure(
      new PublishError(
        `${error.message}${where}. The capture reconnects from the slot and sends it again once Kafka answers; ` +
          "if this repeats, check the brokers and the topic",
        { cause: error },
      ),
    );
  }

  /** Stops sealing and waits for the publisher's request in flight: see OrderedPublisher.close(). */
  async close(): Promise<void> {
    this.cancelLinger?.();
    this.cancelLinger = null;
    await this.publisher.close();
  }
}
