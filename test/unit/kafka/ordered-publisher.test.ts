import { describe, expect, it } from "vitest";
import { RECORD_OVERHEAD_BYTES } from "../../../src/kafka/message-limits.js";
import { OrderedPublisher, type ProduceAck, PublishError } from "../../../src/kafka/ordered-publisher.js";
import { FakeMessageSink, settle } from "./fake-message-sink.js";

const bytes = (text: string) => Buffer.from(text);

function publisher(options: { maxRequestBytes?: number; maxPendingBytes?: number } = {}) {
  const sink = new FakeMessageSink();
  const durable: { receipts: string[]; bytes: number }[] = [];
  const failures: { error: PublishError; unacknowledged: string[] }[] = [];
  const acks: ProduceAck[] = [];
  let idleCalls = 0;
  const p = new OrderedPublisher<string>({
    sink,
    maxRequestBytes: options.maxRequestBytes ?? 1024,
    maxPendingBytes: options.maxPendingBytes ?? 1024,
    onDurable: (receipts, n, acked) => {
      durable.push({ receipts, bytes: n });
      acks.push(acked);
    },
    onIdle: () => idleCalls++,
    onFailure: (error, unacknowledged) => failures.push({ error, unacknowledged }),
  });
  return { p, sink, durable, failures, acks, idleCalls: () => idleCalls };
}

describe("OrderedPublisher", () => {
  it("close() sends nothing more and resolves only once the request in flight has settled", async () => {
    const { p, sink, durable } = publisher({ maxRequestBytes: 1 });
    p.publish({ value: bytes("a"), receipt: "A" });
    p.publish({ value: bytes("b"), receipt: "B" });
    let closed = false;
    const closing = p.close().then(() => {
      closed = true;
    });
    await settle();
    // A new session must not publish while this request may still be appended.
    expect(closed).toBe(false);
    sink.outstanding().ack();
    await closing;
    await settle();
    expect(sink.requests.map((r) => r.values.map(String))).toEqual([["a"]]);
    expect(durable.map((d) => d.receipts)).toEqual([["A"]]);
    expect(p.idle).toBe(false);
    expect(() => p.publish({ value: bytes("c"), receipt: "C" })).toThrow(/closed/);
  });

  it("hands receipts back in publish order once Kafka acknowledges", async () => {
    const { p, sink, durable } = publisher();
    p.publish({ value: bytes("a"), receipt: "A" });
    expect(p.idle).toBe(false);
    sink.outstanding().ack();
    await settle();
    expect(durable).toEqual([{ receipts: ["A"], bytes: 1 }]);
    expect(p.idle).toBe(true);
  });

  it("passes on the partition end offset Kafka reported, and none for a receipt-only batch", async () => {
    const { p, sink, acks } = publisher();
    p.publish({ value: bytes("a"), receipt: "A" });
    p.publish({ value: bytes("b"), receipt: "B" });
    sink.outstanding().ack(41n);
    await settle();
    sink.outstanding().ack(null);
    await settle();
    p.publishReceiptOnly("C");
    await settle();
    expect(acks).toEqual([
      { messages: 1, endOffset: 41n },
      { messages: 1, endOffset: null },
      { messages: 0, endOffset: null },
    ]);
  });

  it("keeps one request in flight and batches what arrives meanwhile into the next one", async () => {
    const { p, sink, durable, idleCalls } = publisher();
    p.publish({ value: bytes("a"), receipt: "A" });
    p.publish({ value: bytes("b"), receipt: "B" });
    p.publish({ value: bytes("c"), receipt: "C" });
    await settle();
    expect(sink.requests.map((r) => r.values.map(String))).toEqual([["a"]]);
    sink.outstanding().ack();
    await settle();
    // A retry of the first request could not have overtaken anything: the rest waited for its answer.
    expect(sink.requests.map((r) => r.values.map(String))).toEqual([["a"], ["b", "c"]]);
    expect(durable.map((d) => d.receipts)).toEqual([["A"]]);
    expect(idleCalls()).toBe(0);
    sink.outstanding().ack();
    await settle();
    expect(durable.map((d) => d.receipts)).toEqual([["A"], ["B", "C"]]);
    expect(idleCalls()).toBe(1);
  });

  it("caps a request at maxRequestBytes, record overhead included, and sends a single larger message alone", async () => {
    const { p, sink } = publisher({ maxRequestBytes: 4 + 2 * RECORD_OVERHEAD_BYTES, maxPendingBytes: 1024 });
    p.publish({ value: bytes("0"), receipt: "first" }); // goes out at once
    p.publish({ value: bytes("aa"), receipt: "1" });
    p.publish({ value: bytes("bb"), receipt: "2" });
    p.publish({ value: bytes("cc"), receipt: "3" });
    p.publish({ value: bytes("large!"), receipt: "4" });
    p.publish({ value: bytes("d"), receipt: "5" });
    for (let i = 0; i < 4; i++) {
      sink.outstanding().ack();
      await settle();
    }
    expect(sink.requests.map((r) => r.values.map(String))).toEqual([
      ["0"],
      ["aa", "bb"],
      ["cc"],
      ["large!"],
      ["d"],
    ]);
  });

  it("hands back receipt-only messages in order, without a request of their own", async () => {
    const { p, sink, durable } = publisher();
    p.publishReceiptOnly("empty-first");
    await settle();
    expect(sink.requests).toHaveLength(0);
    expect(durable).toEqual([{ receipts: ["empty-first"], bytes: 0 }]);

    p.publish({ value: bytes("a"), receipt: "A" });
    p.publishReceiptOnly("empty-after-A");
    p.publish({ value: bytes("b"), receipt: "B" });
    await settle();
    sink.outstanding().ack();
    await settle();
    // The receipt-only message rides with B's request: it is durable no earlier than A, no later than B.
    expect(durable.map((d) => d.receipts)).toEqual([["empty-first"], ["A"]]);
    sink.outstanding().ack();
    await settle();
    expect(durable.map((d) => d.receipts)).toEqual([["empty-first"], ["A"], ["empty-after-A", "B"]]);
    expect(sink.requests.map((r) => r.values.map(String))).toEqual([["a"], ["b"]]);
  });

  it("fails for good on a failed send, reports it at once, and is never idle again", async () => {
    const { p, sink, durable, failures, idleCalls } = publisher();
    p.publish({ value: bytes("a"), receipt: "A" });
    p.publish({ value: bytes("b"), receipt: "B" });
    p.publish({ value: bytes("c"), receipt: "C" });
    sink.outstanding().ack();
    await settle();
    p.publish({ value: bytes("d"), receipt: "D" }); // queued behind the [b, c] request
    sink.outstanding().fail(new Error("KafkaJSNumberOfRetriesExceeded: connect ECONNREFUSED"));
    await settle();

    expect(durable.map((d) => d.receipts)).toEqual([["A"]]);
    expect(failures).toHaveLength(1);
    const [failure] = failures;
    expect(failure?.unacknowledged).toEqual(["B", "C", "D"]);
    expect(failure?.error).toBeInstanceOf(PublishError);
    expect(failure?.error.message).toMatch(/topic "fake.data"/);
    expect(failure?.error.message).toMatch(/2 messages, 2 bytes/);
    expect(failure?.error.message).toMatch(/ECONNREFUSED/);
    // Silence after a failure must not read as "everything durable".
    expect(p.idle).toBe(false);
    expect(idleCalls()).toBe(0);
    // D is never sent, and nothing more is accepted.
    expect(sink.requests).toHaveLength(2);
    expect(() => p.publish({ value: bytes("e"), receipt: "E" })).toThrow(failure?.error);
    expect(() => p.publishReceiptOnly("F")).toThrow(PublishError);
    expect(() => p.waitForCapacity()).toThrow(failure?.error);
    expect(failures).toHaveLength(1);
  });

  it("blocks waitForCapacity at maxPendingBytes until Kafka acknowledges", async () => {
    const { p, sink } = publisher({ maxRequestBytes: 1024, maxPendingBytes: 4 });
    p.publish({ value: bytes("aaa"), receipt: "A" });
    expect(p.waitForCapacity()).toBeUndefined(); // 3 of 4 bytes pending: room left, no promise
    p.publish({ value: bytes("bb"), receipt: "B" });
    let released = false;
    const blocked = p.waitForCapacity();
    expect(blocked).toBeInstanceOf(Promise);
    const waiting = blocked?.then(() => {
      released = true;
    });
    await settle();
    expect(released).toBe(false);
    sink.outstanding().ack(); // A durable: 2 bytes pending
    await waiting;
    expect(released).toBe(true);
  });

  it("wakes a caller blocked on capacity with the failure", async () => {
    const { p, sink } = publisher({ maxRequestBytes: 1024, maxPendingBytes: 2 });
    p.publish({ value: bytes("aaa"), receipt: "A" });
    const waiting = p.waitForCapacity();
    sink.outstanding().fail(new Error("broker gone"));
    await expect(waiting).rejects.toThrow(/broker gone/);
  });
});
