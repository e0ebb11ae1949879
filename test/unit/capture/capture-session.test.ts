import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import {
  CaptureSession,
  type CompletedTransaction,
} from "../../../connectors/postgres-source/capture-session.js";
import type {
  BeginMessage,
  CommitMessage,
  InsertMessage,
  PgoutputMessage,
  RelationMessage,
} from "../../../connectors/postgres-source/pgoutput/pgoutput-decoder.js";
import { MAX_VALUE_BYTES } from "../../../connectors/postgres-source/pgoutput/pgoutput-decoder.js";
import { ValueJoiner } from "../../../connectors/postgres-standby/value-joiner.js";
import type { TransactionChunk } from "../../../src/change/change-model.js";
import type { RelationSchema } from "../../../src/change/relation-schema.js";
import { TextBytes } from "../../../src/change/text-bytes.js";
import { messageLimits } from "../../../src/kafka/message-limits.js";
import { type DecodedDataMessage, decodeDataMessage } from "../../../src/wire/data-message.js";
import { TEST_SESSION } from "../../support/capture-session-id.js";
import { FakeMessageSink, settle } from "../kafka/fake-message-sink.js";

const LINGER_MS = 5;
const VERSION = 7;
const T0 = 1_750_000_000_000_000n;

const relation = (relationId: number, schema = "public", table = `t${relationId}`): RelationMessage => ({
  tag: "relation",
  relationId,
  schema,
  table,
  replicaIdentity: "full",
  columns: [
    { name: "id", typeOid: 23, typeModifier: -1, isKey: true },
    { name: "v", typeOid: 25, typeModifier: -1, isKey: true },
  ],
});
const begin = (commitLsn: bigint, xid = Number(commitLsn % 1_000_000n)): BeginMessage => ({
  tag: "begin",
  finalLsn: commitLsn,
  commitTimeMicros: T0 + commitLsn,
  xid,
});
const commit = (commitLsn: bigint): CommitMessage => ({
  tag: "commit",
  flags: 0,
  commitLsn,
  endLsn: commitLsn + 8n,
  commitTimeMicros: T0 + commitLsn,
});
/** As the slot reader gives it: values are ranges of their UTF-8 bytes. */
const insert = (relationId: number, id: string, v = "x"): InsertMessage<TextBytes> => ({
  tag: "insert",
  relationId,
  newTuple: [TextBytes.of(Buffer.from(id)), TextBytes.of(Buffer.from(v))],
});
const completed = (commitLsn: bigint, rows: number): CompletedTransaction => ({
  commitLsn,
  endLsn: commitLsn + 8n,
  commitTimeMicros: T0 + commitLsn,
  rows,
});

function schemaOf(message: RelationMessage): RelationSchema {
  return {
    relationId: message.relationId,
    schema: message.schema,
    table: message.table,
    replicaIdentity: message.replicaIdentity,
    columns: message.columns.map((c) => ({
      name: c.name,
      typeOid: c.typeOid,
      typeName: c.typeOid === 23 ? "integer" : "text",
      typeModifier: c.typeModifier,
    })),
    keyColumns: [0],
    hasPrimaryKey: true,
  };
}

function harness(
  options: {
    maxMessageBytes?: number;
    maxPendingBytes?: number;
    topicMaxMessageBytes?: number;
    lingerMs?: number;
  } = {},
) {
  const sink = new FakeMessageSink();
  const events: string[] = [];
  const durable: CompletedTransaction[][] = [];
  const failures: Error[] = [];
  const loaded: number[] = [];
  const originalSend = sink.send.bind(sink);
  sink.send = (values) => {
    events.push(`data message x${values.length}`);
    return originalSend(values);
  };
  const session = new CaptureSession({
    sink,
    sourceId: 42n,
    epoch: 3,
    session: TEST_SESSION,
    ...messageLimits(options.topicMaxMessageBytes ?? 16 * 1024 * 1024, options.maxMessageBytes ?? 64 * 1024),
    maxPendingBytes: options.maxPendingBytes ?? 1024 * 1024,
    maxValueBytes: MAX_VALUE_BYTES,
    lingerMs: options.lingerMs ?? LINGER_MS,
    schemas: {
      ensure: async (schema) => {
        events.push(`schema ${schema.relationId}`);
        return { relationId: schema.relationId, version: VERSION };
      },
    },
    loadRelation: async (message) => {
      loaded.push(message.relationId);
      return schemaOf(message);
    },
    onDurable: (transactions) => durable.push(transactions),
    onFailure: (error) => failures.push(error),
  });
  const feed = async (...messages: PgoutputMessage<TextBytes>[]) => {
    for (const m of messages) await session.handle(m);
  };
  const sent = (): DecodedDataMessage[] =>
    sink.requests.flatMap((r) => r.values).map((v) => decodeDataMessage(v));
  const chunks = (): TransactionChunk[] => sent().flatMap((m) => m.chunks);
  return { session, sink, events, durable, failures, loaded, feed, sent, chunks };
}

/** Lets the linger timer fire, then the publisher's send start. */
async function linger(): Promise<void> {
  vi.advanceTimersByTime(LINGER_MS);
  await settle();
}

beforeEach(() => {
  vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout"] });
});
afterEach(() => {
  vi.useRealTimers();
});

describe("CaptureSession: changes larger than the topic's message limit", () => {
  it("sends a value in VALUE_PART frames, one bounded message at a time, that the applier joins back", async () => {
    const topicLimit = 64 * 1024;
    const limits = messageLimits(topicLimit, 512 * 1024);
    const h = harness({
      topicMaxMessageBytes: topicLimit,
      maxMessageBytes: 512 * 1024,
      maxPendingBytes: 65536,
    });
    h.sink.autoAck = true;
    const big = `${"ü✓".repeat(40_000)}${"z".repeat(50_000)}`; // 250 000 bytes of UTF-8
    await h.feed(relation(1), begin(100n), insert(1, "1", big), insert(1, "2", "small"), commit(100n));
    await linger();
    const messages = h.sink.requests.flatMap((r) => r.values);
    expect(messages.length).toBeGreaterThan(4);
    for (const m of messages) expect(m.length).toBeLessThanOrEqual(limits.maxMessageBytes);
    const joiner = new ValueJoiner();
    const changes = h.chunks().flatMap((chunk) => {
      joiner.join(chunk);
      return chunk.changes;
    });
    expect(joiner.isEmpty).toBe(true);
    expect(changes).toEqual([
      { kind: "insert", relation: { relationId: 1, version: VERSION }, values: ["1", big] },
      { kind: "insert", relation: { relationId: 1, version: VERSION }, values: ["2", "small"] },
    ]);
    expect(h.durable.flat()).toEqual([completed(100n, 2)]);
  });
  it("sends a value in parts from its own copy: the buffer the value was a range of is reused once handle() returns", async () => {
    const topicLimit = 64 * 1024;
    const h = harness({
      topicMaxMessageBytes: topicLimit,
      maxMessageBytes: 512 * 1024,
      maxPendingBytes: 65536,
    });
    h.sink.autoAck = true;
    const big = "v".repeat(100_000);
    await h.feed(relation(1), begin(100n));
    const received = insert(1, "1", big);
    const handling = h.session.handle(received);
    expect(handling).toBeInstanceOf(Promise);
    // pg reads the socket's next bytes into the memory the values were views of.
    for (const value of received.newTuple) if (value instanceof TextBytes) value.buf.fill(0x21);
    await handling;
    await h.feed(commit(100n));
    await linger();
    const joiner = new ValueJoiner();
    const changes = h.chunks().flatMap((chunk) => {
      joiner.join(chunk);
      return chunk.changes;
    });
    expect(changes).toEqual([
      { kind: "insert", relation: { relationId: 1, version: VERSION }, values: ["1", big] },
    ]);
  });
});

describe("CaptureSession: framing", () => {
  it("frames a transaction as a final chunk 0 with its commit LSN, xid, time and diffed rows", async () => {
    const h = harness();
    await h.feed(relation(1), begin(100n, 9), insert(1, "1", "a"), commit(100n));
    expect(h.session.isIdle()).toBe(false);
    await linger();
    const [message] = h.sent();
    expect(h.sent()).toHaveLength(1);
    expect(message?.envelope).toEqual({ sourceId: 42n, epoch: 3 });
    expect(message?.chunks).toEqual([
      {
        header: { commitLsn: 100n, commitTimeMicros: T0 + 100n, xid: 9, chunk: 0, finalChunk: true },
        changes: [{ kind: "insert", relation: { relationId: 1, version: VERSION }, values: ["1", "a"] }],
      },
    ]);
    expect(h.durable).toEqual([]);
    h.sink.outstanding().ack();
    await settle();
    expect(h.durable).toEqual([[completed(100n, 1)]]);
    expect(h.session.isIdle()).toBe(true);
  });

  it("is idle only when nothing received waits: not with a transaction open, sealed or in flight", async () => {
    const h = harness();
    expect(h.session.isIdle()).toBe(true);
    await h.feed(relation(1), begin(100n));
    expect(h.session.isIdle()).toBe(false); // open, even before its first change
    await h.feed(insert(1, "1"), commit(100n));
    expect(h.session.isIdle()).toBe(false); // committed, lingering
    await linger();
    expect(h.sink.inFlight).toHaveLength(1);
    expect(h.session.isIdle()).toBe(false); // in flight
    h.sink.outstanding().ack();
    await settle();
    expect(h.session.isIdle()).toBe(true);
  });

  it("lets a burst of small transactions share one message within the linger time", async () => {
    const h = harness();
    await h.feed(relation(1));
    for (const lsn of [100n, 200n, 300n]) await h.feed(begin(lsn), insert(1, String(lsn)), commit(lsn));
    expect(h.sink.requests).toHaveLength(0);
    await linger();
    expect(h.sent()).toHaveLength(1);
    expect(h.chunks().map((c) => [c.header.commitLsn, c.header.finalChunk])).toEqual([
      [100n, true],
      [200n, true],
      [300n, true],
    ]);
    h.sink.outstanding().ack();
    await settle();
    expect(h.durable).toEqual([[completed(100n, 1), completed(200n, 1), completed(300n, 1)]]);
  });

  it("with lingerMs 0, sends what has already arrived on the next turn, on no timer, in one message", async () => {
    const h = harness({ lingerMs: 0 });
    await h.feed(relation(1));
    for (const lsn of [100n, 200n, 300n]) await h.feed(begin(lsn), insert(1, String(lsn)), commit(lsn));
    expect(h.sink.requests).toHaveLength(0);
    // Only the event loop's next turn: the (faked) timers never advance.
    await settle();
    expect(h.sent()).toHaveLength(1);
    expect(h.chunks().map((c) => c.header.commitLsn)).toEqual([100n, 200n, 300n]);
    h.sink.outstanding().ack();
    await settle();
    expect(h.durable).toEqual([[completed(100n, 1), completed(200n, 1), completed(300n, 1)]]);
    expect(h.session.isIdle()).toBe(true);
  });

  it("seals at once, without lingering, a commit that leaves the message half full", async () => {
    const h = harness({ maxMessageBytes: 400 });
    await h.feed(relation(1), begin(100n), insert(1, "1", "v".repeat(250)), commit(100n));
    await settle();
    expect(h.sink.requests).toHaveLength(1);
  });
});

describe("CaptureSession: batching while a request is out", () => {
  it("collects commits while a request is in flight and sends them together once it is answered", async () => {
    const h = harness();
    await h.feed(relation(1), begin(100n), insert(1, "1"), commit(100n));
    await linger();
    await h.feed(begin(200n), insert(1, "2"), commit(200n), begin(300n), insert(1, "3"), commit(300n));
    await linger(); // no timer while a request is out: nothing new is sealed
    expect(h.sink.requests).toHaveLength(1);
    h.sink.outstanding().ack();
    await settle();
    expect(h.sink.requests).toHaveLength(2);
    expect(
      decodeDataMessage(h.sink.outstanding().values[0] as Buffer).chunks.map((c) => c.header.commitLsn),
    ).toEqual([200n, 300n]);
  });

  it("when the publisher turns idle mid-transaction, seals at that transaction's commit, with it", async () => {
    const h = harness();
    await h.feed(relation(1), begin(100n), insert(1, "1"), commit(100n));
    await linger();
    await h.feed(begin(200n), insert(1, "2"), commit(200n), begin(300n), insert(1, "3"));
    h.sink.outstanding().ack(); // idle now, but 300 is open: it must not be cut off from 200's message
    await settle();
    expect(h.sink.requests).toHaveLength(1);
    await h.feed(insert(1, "4"), commit(300n));
    await settle();
    expect(h.sink.requests).toHaveLength(2);
    const second = decodeDataMessage(h.sink.outstanding().values[0] as Buffer);
    expect(second.chunks.map((c) => [c.header.commitLsn, c.header.finalChunk, c.changes.length])).toEqual([
      [200n, true, 1],
      [300n, true, 2],
    ]);
  });
});

describe("CaptureSession: large transactions", () => {
  it("cuts a transaction larger than maxMessageBytes into numbered chunks, final only at the commit", async () => {
    const h = harness({ maxMessageBytes: 300 });
    h.sink.autoAck = true;
    await h.feed(relation(1), begin(100n, 77));
    for (let i = 0; i < 12; i++) await h.feed(insert(1, String(i), "x".repeat(60)));
    await settle();
    const beforeCommit = h.sent().length;
    expect(beforeCommit).toBeGreaterThanOrEqual(2);
    // Chunks already acknowledged confirm nothing: the transaction is not complete.
    expect(h.durable.flat()).toEqual([]);
    await h.feed(commit(100n));
    await linger();
    const messages = h.sent();
    // Each message holds one chunk, and each is within the limit plus one change.
    for (const m of messages) expect(m.chunks).toHaveLength(1);
    for (const v of h.sink.requests.flatMap((r) => r.values)) expect(v.length).toBeLessThan(300 + 100);
    const headers = messages.map((m) => m.chunks[0]?.header);
    expect(headers.map((hd) => hd?.chunk)).toEqual(headers.map((_, i) => i));
    expect(headers.map((hd) => hd?.finalChunk)).toEqual(headers.map((_, i) => i === headers.length - 1));
    expect(new Set(headers.map((hd) => `${hd?.commitLsn}/${hd?.xid}`))).toEqual(new Set(["100/77"]));
    const values = messages
      .flatMap((m) => m.chunks.flatMap((c) => c.changes))
      .map((c) => (c.kind === "insert" ? c.values[0] : c.kind));
    expect(values).toEqual(Array.from({ length: 12 }, (_, i) => String(i)));
    expect(h.durable.flat()).toEqual([completed(100n, 12)]);
  });

  it("holds the stream back (handle() waits) while maxPendingBytes are unacknowledged", async () => {
    const h = harness({ maxMessageBytes: 200, maxPendingBytes: 200 });
    await h.feed(relation(1), begin(100n));
    for (let i = 0; i < 2; i++) await h.feed(insert(1, String(i), "x".repeat(60)));
    let handled = false;
    const waiting = h.session.handle(insert(1, "2", "x".repeat(120)));
    expect(waiting).toBeInstanceOf(Promise);
    const third = waiting?.then(() => {
      handled = true;
    });
    await settle();
    expect(h.sink.requests).toHaveLength(1);
    expect(handled).toBe(false);
    h.sink.outstanding().ack();
    await third;
    expect(handled).toBe(true);
  });
});

describe("CaptureSession: relations", () => {
  it("publishes a relation's schema once, before the first data message that refers to it", async () => {
    const h = harness();
    await h.feed(relation(1), relation(2), begin(100n), insert(1, "1"), insert(2, "1"), commit(100n));
    await h.feed(relation(1)); // pgoutput sends it again after a definition change
    await linger();
    expect(h.events).toEqual(["schema 1", "schema 2", "schema 1", "data message x1"]);
    expect(h.loaded).toEqual([1, 2, 1]);
  });

  it("rejects a change to a relation it was never told about, naming the relation", async () => {
    const h = harness();
    await h.feed(begin(100n));
    await expect(h.feed(insert(99, "1"))).rejects.toThrow(/relation 99 before its Relation message/);
  });

  it("leaves diffrelay's own bookkeeping tables out, without loading or publishing their schema", async () => {
    const h = harness();
    await h.feed(relation(5, "diffrelay", "apply_pause"), relation(1));
    await h.feed(begin(100n), insert(5, "bookkeeping"), insert(1, "1"), commit(100n));
    await h.feed(
      begin(200n),
      {
        tag: "truncate",
        cascade: false,
        restartIdentity: true,
        relationIds: [5, 1],
      },
      commit(200n),
    );
    await linger();
    expect(h.loaded).toEqual([1]);
    expect(h.events.filter((e) => e.startsWith("schema"))).toEqual(["schema 1"]);
    const changes = h.chunks().flatMap((c) => c.changes);
    expect(changes).toEqual([
      { kind: "insert", relation: { relationId: 1, version: VERSION }, values: ["1", "x"] },
      {
        kind: "truncate",
        relations: [{ relationId: 1, version: VERSION }],
        cascade: false,
        restartIdentity: true,
      },
    ]);
    h.sink.outstanding().ack();
    await settle();
    // Only rows of published tables count.
    expect(h.durable).toEqual([[completed(100n, 1), completed(200n, 0)]]);
  });
});

describe("CaptureSession: receipt-only transactions", () => {
  it("confirms a transaction with nothing to publish without a Kafka message, in commit order", async () => {
    const h = harness();
    await h.feed(relation(5, "diffrelay", "apply_position"), relation(1));
    // Only ignored rows, and a logical message with someone else's prefix: nothing to publish.
    await h.feed(begin(100n), insert(5, "p"), commit(100n));
    await linger();
    expect(h.sink.requests).toHaveLength(0);
    expect(h.durable).toEqual([[completed(100n, 0)]]);

    await h.feed(begin(200n), insert(1, "1"), commit(200n));
    await linger();
    await h.feed(
      begin(300n),
      { tag: "message", transactional: true, lsn: 290n, prefix: "someone.else", content: Buffer.from("{}") },
      commit(300n),
    );
    await settle();
    // 300 is durable no earlier than 200, whose message is still unanswered.
    expect(h.durable).toEqual([[completed(100n, 0)]]);
    h.sink.outstanding().ack();
    await settle();
    expect(h.sink.requests).toHaveLength(1);
    expect(h.durable).toEqual([[completed(100n, 0)], [completed(200n, 1)], [completed(300n, 0)]]);
  });

  it("puts diffrelay's DDL and sequence messages in their place in the transaction", async () => {
    const h = harness();
    await h.feed(relation(1), begin(100n), insert(1, "1"));
    await h.feed({
      tag: "message",
      transactional: true,
      lsn: 90n,
      prefix: "diffrelay.ddl",
      content: Buffer.from(JSON.stringify({ search_path: "public", command: "ALTER TABLE t1 ADD c int" })),
    });
    await h.feed(insert(1, "2"), commit(100n));
    await linger();
    expect(h.chunks()[0]?.changes.map((c) => c.kind)).toEqual(["insert", "ddl", "insert"]);
  });
});

describe("CaptureSession: Kafka failure", () => {
  it("reports a failed send at once, names the topic and the first unacknowledged LSN, and is never idle again", async () => {
    const h = harness();
    await h.feed(relation(1), begin(0x1_0000_00a0n), insert(1, "1"), commit(0x1_0000_00a0n));
    await linger();
    h.sink.outstanding().ack();
    await settle();
    await h.feed(begin(0x1_0000_0100n), insert(1, "2"), commit(0x1_0000_0100n));
    await linger();
    expect(h.failures).toEqual([]);
    // No further message arrives: the failure must surface on its own.
    h.sink.outstanding().fail(new Error("KafkaJSNumberOfRetriesExceeded"));
    await settle();
    expect(h.failures).toHaveLength(1);
    const message = h.failures[0]?.message ?? "";
    expect(message).toMatch(/topic "fake\.data"/);
    expect(message).toMatch(/KafkaJSNumberOfRetriesExceeded/);
    expect(message).toMatch(/LSN 1\/100/);
    expect(message).toMatch(/reconnects from the slot/);
    expect(h.durable).toEqual([[completed(0x1_0000_00a0n, 1)]]);
    // What was received since the last acknowledgement is lost with the session: never "idle".
    expect(h.session.isIdle()).toBe(false);
    await expect(h.feed(begin(0x1_0000_0200n))).rejects.toThrow(/fake\.data/);
    expect(h.failures).toHaveLength(1);
  });

  it("takes nothing more after a failure, even mid-transaction, and seals nothing later", async () => {
    const h = harness({ maxMessageBytes: 200, maxPendingBytes: 1024 });
    await h.feed(relation(1), begin(100n));
    for (let i = 0; i < 4; i++) await h.feed(insert(1, String(i), "x".repeat(60)));
    await settle();
    h.sink.outstanding().fail(new Error("broker gone"));
    await settle();
    expect(h.failures).toHaveLength(1);
    await expect(h.feed(commit(100n))).rejects.toThrow(/broker gone/);
    await linger();
    expect(h.sink.requests).toHaveLength(1);
    expect(h.failures).toHaveLength(1);
  });
});
