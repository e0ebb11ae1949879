import { describe, expect, test } from "vitest";
import {
  applyBatch,
  type FrameSink,
  type TopicBatch,
  TopicCursor,
} from "../../../connectors/postgres-standby/apply-batch.js";
import type { Frame } from "../../../connectors/postgres-standby/frame-decoder.js";
import { TopicGapError } from "../../../connectors/postgres-standby/position-errors.js";
import type { ApplyPosition } from "../../../connectors/postgres-standby/position-store.js";
import { DataMessageBuilder } from "../../../src/wire/data-message.js";
import { TEST_SESSION } from "../../support/capture-session-id.js";
import { position } from "./apply-fakes.js";

/** Takes every frame and moves its position past it, as the grouper does between transactions. */
class RecordingSink implements FrameSink {
  readonly handled: string[] = [];
  completedCommits = 0;
  current: ApplyPosition;

  constructor(nextOffset: bigint) {
    this.current = position({ nextOffset });
  }

  async handleFrame(frame: Frame, lastOfBatch: boolean): Promise<void> {
    this.handled.push(`${frame.offset}${lastOfBatch ? " last" : ""}`);
    this.current = { ...this.current, nextOffset: frame.offset + 1n };
  }

  async commitCompleted(): Promise<void> {
    this.completedCommits += 1;
  }
}

function batch(offsets: number[], running: () => boolean = () => true, highWatermark?: number) {
  const calls = { heartbeats: 0 };
  const topicBatch: TopicBatch = {
    // The values do not decode: the sink receives bad frames, which is all this stage needs.
    batch: {
      highWatermark: String(highWatermark ?? Math.max(-1, ...offsets) + 1),
      messages: offsets.map((o) => ({ offset: String(o), value: null })),
    },
    isRunning: running,
    isStale: () => false,
    heartbeat: async () => {
      calls.heartbeats += 1;
    },
  };
  return { topicBatch, calls };
}

const cursorAt = (next: bigint) => new TopicCursor("t", 0, next);

describe("apply batch", () => {
  test("hands every message from the standby's next offset on, the last one marked, a heartbeat after each", async () => {
    const sink = new RecordingSink(3n);
    const { topicBatch, calls } = batch([1, 2, 3, 4, 5]);
    expect(await applyBatch(topicBatch, sink, cursorAt(3n), () => false)).toBe("applied");
    expect(sink.handled).toEqual(["3", "4", "5 last"]);
    expect(calls.heartbeats).toBe(3);
  });

  test("each frame is decoded at the sink's current position", async () => {
    const sink = new RecordingSink(0n);
    const seen: bigint[] = [];
    const handle = sink.handleFrame.bind(sink);
    sink.handleFrame = async (frame, last) => {
      if (frame.kind === "bad") seen.push(BigInt(frame.error.offset));
      await handle(frame, last);
    };
    await applyBatch(batch([0, 1]).topicBatch, sink, cursorAt(0n), () => false);
    expect(seen).toEqual([0n, 1n]);
  });

  test("a message decoded ahead is checked against the source the message before it set", async () => {
    const from = (sourceId: bigint) => {
      const builder = new DataMessageBuilder({ sourceId, epoch: 1 }, TEST_SESSION);
      builder.beginTransaction({
        commitLsn: 0x100n,
        commitTimeMicros: 1n,
        xid: 7,
        chunk: 0,
        finalChunk: true,
      });
      builder.addChange({ kind: "insert", relation: { relationId: 1, version: 1 }, values: ["1"] });
      return builder.finish();
    };
    // A fresh standby follows no source yet: the first message's source becomes the one it follows.
    const sink = new RecordingSink(0n);
    sink.current = { ...sink.current, sourceId: null };
    const kinds: string[] = [];
    sink.handleFrame = async (frame) => {
      kinds.push(frame.kind);
      await new Promise((resolve) => setTimeout(resolve, 5)); // the standby at work
      if (frame.kind === "transactions") sink.current = { ...sink.current, sourceId: 0xaan };
      sink.current = { ...sink.current, nextOffset: frame.offset + 1n };
    };
    const topicBatch: TopicBatch = {
      batch: {
        highWatermark: "2",
        messages: [
          { offset: "0", value: from(0xaan) },
          { offset: "1", value: from(0xbbn) },
        ],
      },
      isRunning: () => true,
      isStale: () => false,
      heartbeat: async () => undefined,
    };
    await applyBatch(topicBatch, sink, cursorAt(0n), () => false);
    expect(kinds).toEqual(["transactions", "bad"]);
  });

  test("stops between messages when the session ends or kafkajs stops running", async () => {
    let halted = false;
    const sink = new RecordingSink(0n);
    sink.handleFrame = async (frame) => {
      sink.handled.push(String(frame.offset));
      halted = true;
    };
    expect(await applyBatch(batch([0, 1, 2]).topicBatch, sink, cursorAt(0n), () => halted)).toBe("halted");
    expect(sink.handled).toEqual(["0"]);

    const stopped = new RecordingSink(0n);
    expect(await applyBatch(batch([0, 1], () => false).topicBatch, stopped, cursorAt(0n), () => false)).toBe(
      "halted",
    );
    expect(stopped.handled).toEqual([]);
  });

  test("a drain ends at the message before its end offset, with everything complete committed", async () => {
    const sink = new RecordingSink(0n);
    expect(await applyBatch(batch([0, 1, 2, 3]).topicBatch, sink, cursorAt(0n), () => false, 3n)).toBe(
      "drained",
    );
    expect(sink.handled).toEqual(["0", "1", "2"]);
    expect(sink.completedCommits).toBe(1);
  });

  test("a message past the offset needed next is a gap: nothing of it is applied, the error names both offsets", async () => {
    // kafkajs answers OFFSET_OUT_OF_RANGE by fetching from the earliest offset left: here 7, where 5 was needed.
    const sink = new RecordingSink(5n);
    const run = applyBatch(batch([7, 8]).topicBatch, sink, cursorAt(5n), () => false);
    await expect(run).rejects.toBeInstanceOf(TopicGapError);
    await expect(run).rejects.toThrow(
      "gap in topic t partition 0: the standby needs offset 5 next, but the earliest offset left is 7; re-seed the standby with diffrelay seed",
    );
    expect(sink.handled).toEqual([]);
  });

  test("within a session the cursor carries over batches: a later batch that skips offsets is a gap too", async () => {
    const sink = new RecordingSink(0n);
    const cursor = cursorAt(0n);
    await applyBatch(batch([0, 1]).topicBatch, sink, cursor, () => false);
    // Redelivered offsets are skipped, not a gap.
    await applyBatch(batch([1, 2]).topicBatch, sink, cursor, () => false);
    await expect(applyBatch(batch([4]).topicBatch, sink, cursor, () => false)).rejects.toThrow(
      /needs offset 3 next, but the earliest offset left is 4/,
    );
    expect(sink.handled).toEqual(["0", "1 last", "2 last"]);
  });

  test("a topic that ends below the offset needed next was recreated: a gap, even if its messages are all redeliveries", async () => {
    const sink = new RecordingSink(10n);
    await expect(applyBatch(batch([0, 1, 2]).topicBatch, sink, cursorAt(10n), () => false)).rejects.toThrow(
      /needs offset 10 next, but the earliest offset left is 0 and the topic ends at offset 3, below the standby's position/,
    );
    expect(sink.handled).toEqual([]);
  });

  test("a frame that takes longer than the group session keeps the membership alive while it is applied", async () => {
    const sink = new RecordingSink(0n);
    const handle = sink.handleFrame.bind(sink);
    sink.handleFrame = async (frame, last) => {
      await new Promise((resolve) => setTimeout(resolve, 2600));
      await handle(frame, last);
    };
    const { topicBatch, calls } = batch([0]);
    await applyBatch(topicBatch, sink, cursorAt(0n), () => false);
    // Two renewals during the 2.6 s frame (one a second), and the one after it.
    expect(calls.heartbeats).toBeGreaterThanOrEqual(3);
  });
});
