import { describe, expect, it } from "vitest";
import { alignment, differingBuckets, diffRows } from "../../../operations/verify/difference-finder.js";

describe("difference finder", () => {
  it("classifies keyed rows as changed, missing and extra", () => {
    const source = [
      { key: "(1)", row: "(1,a)" },
      { key: "(2)", row: "(2,b)" },
      { key: "(3)", row: "(3,c)" },
    ];
    const standby = [
      { key: "(1)", row: "(1,a)" },
      { key: "(2)", row: "(2,B)" },
      { key: "(4)", row: "(4,d)" },
    ];
    expect(diffRows(source, standby, true)).toEqual({
      changed: [{ key: "(2)", source: "(2,b)", standby: "(2,B)" }],
      missing: [{ key: "(3)", row: "(3,c)", count: 1 }],
      extra: [{ key: "(4)", row: "(4,d)", count: 1 }],
    });
  });

  it("compares PK-less rows as multisets, so a doubled row shows up", () => {
    const row = { key: "(x)", row: "(x)" };
    expect(diffRows([row], [row, row], false)).toEqual({
      changed: [],
      missing: [],
      extra: [{ key: "(x)", row: "(x)", count: 1 }],
    });
  });

  it("finds buckets that differ in count, sum, or presence", () => {
    const a = new Map([
      [0, { count: 2n, sum: "10" }],
      [1, { count: 1n, sum: "5" }],
      [2, { count: 1n, sum: "7" }],
    ]);
    const b = new Map([
      [0, { count: 2n, sum: "10" }],
      [1, { count: 1n, sum: "6" }],
      [3, { count: 1n, sum: "1" }],
    ]);
    expect(differingBuckets(a, b)).toEqual([1, 2, 3]);
  });

  it("decides whether the standby stands exactly at a snapshot", () => {
    // C = 100: the snapshot holds commits < 100.
    expect(alignment(100n, 100n, [])).toBe("passed");
    expect(alignment(90n, 100n, [80n, 95n, 120n])).toBe("behind");
    expect(alignment(90n, 100n, [80n, 90n, 100n])).toBe("match");
    expect(alignment(90n, 100n, [85n])).toBe("unknown");
  });
});
