import type { CompressionTypes, Producer } from "kafkajs";
import type { Change, TransactionHeader } from "../../src/change/change-model.js";
import type { Lsn } from "../../src/change/lsn.js";
import type { RelationSchema } from "../../src/change/relation-schema.js";
import { OrderedPublisher, type ProduceAck } from "../../src/kafka/ordered-publisher.js";
import type { SchemaPublisher } from "../../src/kafka/schema-topic.js";
import { DataMessageBuilder } from "../../src/wire/data-message.js";
import { toMessageChange } from "./logical-messages.js";
import type { PgoutputMessage } from "./pgoutput/pgoutput-decoder.js";
import { type KnownRelation, toChange } from "./row-differ.js";

/** A source transaction whose final chunk is in a message, with what confirming it means. */
export interface CompletedTransaction {
  commitLsn: Lsn;
  /** The slot may be confirmed up to here once this transaction is durable. */
  endLsn: Lsn;
  commitTimeMicros: bigint;
  rows: number;
}

export interface CaptureSessionOptions {
  producer: Producer;
  topic: string;
  compression: CompressionTypes;
  sourceId: bigint;
  epoch: number;
  maxMessageBytes: number;
  maxPendingBytes: number;
  lingerMs: number;
  schemas: SchemaPublisher;
  /** Reads a relation's definition from the source catalog when pgoutput announces it. */
  loadRelation: (message: Extract<PgoutputMessage, { tag: "relation" }>) => Promise<RelationSchema>;
  /** Called in commit order once transactions are durable in Kafka. */
  onDurable: (completed: CompletedTransaction[], bytes: number, acked: ProduceAck) => void;
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
  private readonly publisher: OrderedPublisher<CompletedTransaction[]>;
  private readonly relations = new Map<number, KnownRelation>();
  private readonly ignored = new Set<number>();
  private open: OpenTransaction | null = null;
  private completedInMessage: CompletedTransaction[] = [];
  private flushAtCommit = false;
  private lingerTimer: NodeJS.Timeout | null = null;

  constructor(private readonly options: CaptureSessionOptions) {
    this.builder = new DataMessageBuilder({ sourceId: options.sourceId, epoch: options.epoch });
    this.publisher = new OrderedPublisher<CompletedTransaction[]>({
      producer: options.producer,
      topic: options.topic,
      compression: options.compression,
      maxRequestBytes: Math.max(options.maxMessageBytes, 1024 * 1024),
      maxPendingBytes: options.maxPendingBytes,
      onDurable: (receipts, bytes, acked) => options.onDurable(receipts.flat(), bytes, acked),
      onIdle: () => this.flush(),
    });
  }

  /** Nothing received is waiting to become durable: the slot may move to the server's position. */
  isIdle(): boolean {
    return (
      this.open === null &&
      this.builder.isEmpty() &&
      this.completedInMessage.length === 0 &&
      this.publisher.idle
    );
  }

  /** Surfaces a Kafka failure to the replication loop, which restarts from the slot. */
  checkHealth(): void {
    this.publisher.throwIfFailed();
  }

  async handle(message: PgoutputMessage): Promise<void> {
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
      case "relation": {
        if (message.schema === DIFFRELAY_SCHEMA) {
          // diffrelay's own bookkeeping on the source is published by FOR ALL TABLES but is not user data.
          this.ignored.add(message.relationId);
          return;
        }
        const schema = await this.options.loadRelation(message);
        const ref = await this.options.schemas.ensure(schema);
        this.relations.set(message.relationId, { schema, ref });
        return;
      }
      case "insert":
      case "update":
      case "delete":
        if (this.ignored.has(message.relationId)) return;
        return this.add(toChange(message, this.relation(message.relationId)));
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
        if (change) await this.add(change);
        return;
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

  private async add(change: Change): Promise<void> {
    const open = this.open;
    if (!open) throw new Error(`pgoutput sent a ${change.kind} outside a transaction`);
    if (!open.begun) {
      this.builder.beginTransaction(open.header);
      open.begun = true;
    }
    this.builder.addChange(change);
    if (change.kind === "insert" || change.kind === "update" || change.kind === "delete") open.rows++;
    if (this.builder.byteLength >= this.options.maxMessageBytes) {
      // Cut the transaction here: this chunk goes out, the next message continues it.
      this.seal();
      open.header = { ...open.header, chunk: open.header.chunk + 1 };
      this.builder.beginTransaction(open.header);
      await this.publisher.waitForCapacity();
    }
  }

  private async commit(endLsn: Lsn): Promise<void> {
    const open = this.open;
    if (!open) throw new Error("pgoutput sent Commit without Begin");
    this.open = null;
    if (open.begun) this.builder.markFinalChunk();
    this.completedInMessage.push({
      commitLsn: open.header.commitLsn,
      endLsn,
      commitTimeMicros: open.header.commitTimeMicros,
      rows: open.rows,
    });
    if (this.flushAtCommit || this.builder.byteLength >= this.options.maxMessageBytes / 2) {
      this.flush();
    } else if (this.publisher.idle && this.lingerTimer === null) {
      // Wait briefly so that a burst of small transactions shares one message;
      // while a request is in flight, onIdle flushes instead.
      this.lingerTimer = setTimeout(() => {
        this.lingerTimer = null;
        this.flush();
      }, this.options.lingerMs);
    }
    await this.publisher.waitForCapacity();
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
    this.completedInMessage = [];
    if (this.builder.isEmpty()) {
      // Transactions without published changes: durable as soon as all before them are.
      this.publisher.publishReceiptOnly(completed);
      return;
    }
    this.publisher.publish({ value: this.builder.finish(), receipt: completed });
  }

  async close(): Promise<void> {
    if (this.lingerTimer) clearTimeout(this.lingerTimer);
    this.lingerTimer = null;
  }
}
