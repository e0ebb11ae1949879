import type { Kafka, Producer } from "kafkajs";
import type { RelationSchema, SchemaRef } from "../change/relation-schema.js";
import { DiffrelayError } from "../errors/diffrelay-error.js";
import { decodeSchemaMessage, encodeSchemaMessage } from "../wire/schema-message.js";
import { startTopicReader, type TopicReader, type TopicRecord } from "./topic-reader.js";

export interface SourceIdentity {
  sourceId: bigint;
  epoch: number;
}

/** Makes a relation definition available to consumers before any data message refers to it. */
export interface SchemaSink {
  ensure(schema: RelationSchema): Promise<SchemaRef>;
}

/**
 * Publishes relation definitions to the compacted schema topic. A definition
 * is sent, and acknowledged, before the first data message that refers to it;
 * the same definition always has the same key and value, so a restart that
 * sends it again changes nothing.
 */
export class SchemaPublisher implements SchemaSink {
  private readonly published = new Set<string>();

  constructor(
    private readonly producer: Producer,
    private readonly topic: string,
    private readonly identity: SourceIdentity,
  ) {}

  async ensure(schema: RelationSchema): Promise<SchemaRef> {
    const message = encodeSchemaMessage(this.identity, schema);
    const ref = { relationId: schema.relationId, version: message.version };
    if (this.published.has(message.key)) return ref;
    await this.producer.send({
      topic: this.topic,
      acks: -1,
      messages: [{ key: message.key, value: message.value }],
    });
    this.published.add(message.key);
    return ref;
  }
}

/**
 * Follows the schema topic from its beginning and answers lookups by
 * (relation id, version). A lookup for a version not seen yet waits for it,
 * because the capture publishes a definition just before the data that uses it.
 */
export class SchemaCatalog {
  private readonly schemas = new Map<string, RelationSchema>();
  private readonly waiters = new Map<string, Array<() => void>>();
  private reader: TopicReader | null = null;
  private failure: Error | null = null;

  constructor(
    private readonly kafka: Kafka,
    private readonly topic: string,
    private readonly expectedSourceId: () => bigint | undefined,
  ) {}

  async start(): Promise<void> {
    this.reader = await startTopicReader({
      kafka: this.kafka,
      topic: this.topic,
      purpose: "schemas",
      onRecords: (records) => {
        for (const record of records) this.accept(record);
      },
      onFailure: (error) => {
        this.failure = error;
        this.wakeAll();
      },
    });
  }

  private accept(record: TopicRecord): void {
    if (!record.value) return;
    let decoded: ReturnType<typeof decodeSchemaMessage>;
    try {
      decoded = decodeSchemaMessage(record.value);
    } catch (err) {
      // Like a data frame that does not decode: retrying reads the same message again, and applying
      // without the definition it held is impossible, so it stops the applier (exit 5).
      throw new DiffrelayError(
        "bad-frame",
        `bad message at schema topic ${this.topic} partition 0 offset ${record.offset}: ${(err as Error).message}; nothing after it is applied`,
        { cause: err },
      );
    }
    const { envelope, schema, version } = decoded;
    const expected = this.expectedSourceId();
    if (expected !== undefined && envelope.sourceId !== expected) return;
    this.add({ relationId: schema.relationId, version }, schema);
  }

  async stop(): Promise<void> {
    await this.reader?.stop();
    this.reader = null;
  }

  /** A schema message that did not decode stops what reads the catalog, even one that needs no new definition. */
  throwIfFailed(): void {
    if (this.failure) throw this.failure;
  }

  async get(ref: SchemaRef, timeoutMs: number): Promise<RelationSchema> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (this.failure) throw this.failure;
      const found = this.schemas.get(keyOf(ref));
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(
          `schema of relation ${ref.relationId} version ${ref.version.toString(16).padStart(8, "0")} is not on ${this.topic} (waited ${timeoutMs} ms)`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(left, 500));
        const list = this.waiters.get(keyOf(ref)) ?? [];
        list.push(() => {
          clearTimeout(timer);
          resolve();
        });
        this.waiters.set(keyOf(ref), list);
      });
    }
  }

  private add(ref: SchemaRef, schema: RelationSchema): void {
    const key = keyOf(ref);
    this.schemas.set(key, schema);
    const list = this.waiters.get(key);
    this.waiters.delete(key);
    for (const wake of list ?? []) wake();
  }

  private wakeAll(): void {
    const all = [...this.waiters.values()].flat();
    this.waiters.clear();
    for (const wake of all) wake();
  }
}

function keyOf(ref: SchemaRef): string {
  return `${ref.relationId}:${ref.version}`;
}
