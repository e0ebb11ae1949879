import { describe, expect, test } from "vitest";
import {
  applyBatch,
  type FrameSink,
  type TopicBatch,
} from "../../../connectors/postgres-standby/apply-batch.js";
import type { Frame } from "../../../connectors/postgres-standby/frame-decoder.js";
import type { ApplyPosition } from "../../../connectors/postgres-standby/position-store.js";
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

function batch(offsets: number[], running: () => boolean = () => true) {
  const calls = { heartbeats: 0 };
  const topicBatch: TopicBatch = {
    // The values do not decode: the sink receives bad frames, which is all this stage needs.
    batch: { messages: offsets.map((o) => ({ offset: String(o), value: null })) },
    isRunning: running,
    isStale: () => false,
    heartbeat: async () => {
      calls.heartbeats += 1;
    },
  };
  return { topicBatch, calls };
}

describe("apply batch", () => {
  test("hands every message from the standby's next offset on, the last one marked, a heartbeat after each", async () => {
    const sink = new RecordingSink(3n);
    const { topicBatch, calls } = batch([1, 2, 3, 4, 5]);
    expect(await applyBatch(topicBatch, sink, () => false)).toBe("applied");
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
    await applyBatch(batch([0, 1]).topicBatch, sink, () => false);
    expect(seen).toEqual([0n, 1n]);
  });

  test("stops between messages when the session ends or kafkajs stops running", async () => {
    let halted = false;
    const sink = new RecordingSink(0n);
    sink.handleFrame = async (frame) => {
      sink.handled.push(String(frame.offset));
      halted = true;
    };
    expect(await applyBatch(batch([0, 1, 2]).topicBatch, sink, () => halted)).toBe("halted");
    expect(sink.handled).toEqual(["0"]);

    const stopped = new RecordingSink(0n);
    expect(await applyBatch(batch([0, 1], () => false).topicBatch, stopped, () => false)).toBe("halted");
    expect(stopped.handled).toEqual([]);
  });

  test("a drain ends at the message before its end offset, with everything complete committed", async () => {
    const sink = new RecordingSink(0n);
    expect(await applyBatch(batch([0, 1, 2, 3]).topicBatch, sink, () => false, 3n)).toBe("drained");
    expect(sink.handled).toEqual(["0", "1", "2"]);
    expect(sink.completedCommits).toBe(1);
  });
});
