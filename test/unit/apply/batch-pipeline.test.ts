import { describe, expect, test } from "vitest";
import { BatchPipeline } from "../../../connectors/postgres-standby/batch-pipeline.js";

/** A promise and the function that settles it. */
function gate(): { opened: Promise<void>; open: () => void } {
  let open: () => void = () => undefined;
  const opened = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { opened, open };
}

describe("batch pipeline", () => {
  test("eachBatch returns while its batch applies, so the next fetch overlaps it; batches apply one at a time, in order", async () => {
    const log: string[] = [];
    const gates = new Map([1, 2, 3].map((n) => [n, gate()]));
    const pipeline = new BatchPipeline<number>(
      async (n) => {
        log.push(`start ${n}`);
        await gates.get(n)?.opened;
        log.push(`end ${n}`);
      },
      (err) => {
        throw err;
      },
    );
    // The first batch has nothing before it: kafkajs may fetch again at once.
    await pipeline.push(1);
    expect(log).toEqual(["start 1"]);
    // The second waits for the first, and so does kafkajs's next fetch after it.
    let secondReturned = false;
    const second = pipeline.push(2).then(() => {
      secondReturned = true;
    });
    await new Promise((resolve) => setImmediate(resolve));
    expect(secondReturned).toBe(false);
    gates.get(1)?.open();
    await second;
    expect(log).toEqual(["start 1", "end 1", "start 2"]);
    const third = pipeline.push(3);
    gates.get(2)?.open();
    await third;
    gates.get(3)?.open();
    await pipeline.settled();
    expect(log).toEqual(["start 1", "end 1", "start 2", "end 2", "start 3", "end 3"]);
  });

  test("a batch knows whether another waits behind it", async () => {
    const seen: [number, boolean][] = [];
    const first = gate();
    const pipeline = new BatchPipeline<number>(
      async (n, moreBehind) => {
        if (n === 1) await first.opened;
        seen.push([n, moreBehind()]);
      },
      () => undefined,
    );
    await pipeline.push(1);
    const second = pipeline.push(2);
    first.open();
    await second;
    await pipeline.settled();
    expect(seen).toEqual([
      [1, true],
      [2, false],
    ]);
  });

  test("a failed batch goes to onError and the batches behind it are still handed over, to halt", async () => {
    const errors: string[] = [];
    const applied: number[] = [];
    const pipeline = new BatchPipeline<number>(
      async (n) => {
        applied.push(n);
        if (n === 1) throw new Error("standby gone");
      },
      (err) => errors.push((err as Error).message),
    );
    await pipeline.push(1);
    await pipeline.push(2);
    await pipeline.settled();
    expect(errors).toEqual(["standby gone"]);
    expect(applied).toEqual([1, 2]);
  });

  test("settled() also waits for a batch pushed while it waits", async () => {
    const first = gate();
    const applied: number[] = [];
    const pipeline = new BatchPipeline<number>(
      async (n) => {
        if (n === 1) await first.opened;
        applied.push(n);
      },
      () => undefined,
    );
    await pipeline.push(1);
    const settled = pipeline.settled();
    void pipeline.push(2);
    first.open();
    await settled;
    expect(applied).toEqual([1, 2]);
  });
});
