import { describe, expect, test } from "vitest";
import {
  checkSource,
  type FrameOrigin,
  readFrame,
} from "../../../connectors/postgres-standby/frame-decoder.js";
import { DataMessageBuilder } from "../../../src/wire/data-message.js";
import { WireFormatError } from "../../../src/wire/wire-format-error.js";
import { TEST_SESSION } from "../../support/capture-session-id.js";
import { SOURCE_ID, TOPIC } from "./apply-fakes.js";

const origin: FrameOrigin = { topic: TOPIC, partition: 0, sourceId: SOURCE_ID };

/** What the applier does with each message: decode it, then check its source. */
function decodeFrame(value: Buffer | null, offset: bigint, from: FrameOrigin) {
  return checkSource(readFrame(value, offset, from), value, from);
}

function message(sourceId: bigint): Buffer {
  const builder = new DataMessageBuilder({ sourceId, epoch: 2 }, TEST_SESSION);
  builder.beginTransaction({ commitLsn: 0x100n, commitTimeMicros: 1n, xid: 7, chunk: 0, finalChunk: true });
  builder.addChange({ kind: "insert", relation: { relationId: 1, version: 1 }, values: ["1", null] });
  return builder.finish();
}

function badProblem(value: Buffer | null, from: FrameOrigin = origin) {
  const frame = decodeFrame(value, 42n, from);
  if (frame.kind !== "bad") throw new Error("the frame decoded");
  expect(frame.value).toBe(value);
  expect(frame.error).toMatchObject({ topic: TOPIC, partition: 0, offset: "42" });
  return frame.error;
}

describe("frame decoder", () => {
  test("a message from the followed source decodes to its transactions", () => {
    const frame = decodeFrame(message(SOURCE_ID), 42n, origin);
    expect(frame.kind).toBe("transactions");
    if (frame.kind !== "transactions") return;
    expect(frame.offset).toBe(42n);
    expect(frame.message.envelope).toEqual({ sourceId: SOURCE_ID, epoch: 2 });
    expect(frame.message.chunks.map((c) => c.header.commitLsn)).toEqual([0x100n]);
  });

  test("without a followed source yet, any source is accepted", () => {
    expect(decodeFrame(message(7n), 0n, { ...origin, sourceId: null }).kind).toBe("transactions");
  });

  test("a message from another source is a bad frame naming both sources", () => {
    expect(badProblem(message(7n)).message).toMatch(
      /offset 42: it comes from source 0000000000000007, but this standby follows source 123456789abcdef0/,
    );
  });

  test("an empty message is a bad frame", () => {
    expect(badProblem(null).message).toMatch(/offset 42: empty message/);
  });

  test("bytes that do not decode are a bad frame carrying the wire error", () => {
    const error = badProblem(Buffer.from("not a diffrelay message"));
    expect(error.cause).toBeInstanceOf(WireFormatError);
    expect(error.message).toContain((error.cause as Error).message);
  });

  test("a truncated message is a bad frame", () => {
    const whole = message(SOURCE_ID);
    expect(badProblem(whole.subarray(0, whole.length - 2)).cause).toBeInstanceOf(WireFormatError);
  });
});
