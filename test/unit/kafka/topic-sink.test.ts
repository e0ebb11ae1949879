import type { Producer, ProducerRecord } from "kafkajs";
import { describe, expect, it } from "vitest";
import { COMPRESSION } from "../../../src/kafka/kafka-client.js";
import { kafkaTopicSink, MIN_COMPRESSED_REQUEST_BYTES } from "../../../src/kafka/ordered-publisher.js";

/** A producer that records each request and acknowledges it at base offset 10. */
function recordingProducer(): { producer: Producer; sent: ProducerRecord[] } {
  const sent: ProducerRecord[] = [];
  const producer = {
    send: async (record: ProducerRecord) => {
      sent.push(record);
      return [{ topicName: record.topic, partition: 0, errorCode: 0, baseOffset: "10" }];
    },
  } as unknown as Producer;
  return { producer, sent };
}

describe("kafkaTopicSink", () => {
  it("sends a request of small messages uncompressed and a larger one with the topic's compression", async () => {
    const { producer, sent } = recordingProducer();
    const sink = kafkaTopicSink(producer, "t", COMPRESSION.gzip);
    const small = Buffer.alloc(MIN_COMPRESSED_REQUEST_BYTES / 2 - 1);
    expect(await sink.send([small, small])).toBe(12n);
    expect(await sink.send([small, small, Buffer.alloc(2)])).toBe(13n);
    expect(sent.map((r) => r.compression)).toEqual([COMPRESSION.none, COMPRESSION.gzip]);
    expect(sent.every((r) => r.acks === -1 && r.topic === "t")).toBe(true);
  });
});
