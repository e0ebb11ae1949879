import { describe, expect, test } from "vitest";
import { chunks, columnArrays } from "../../../../connectors/postgres-standby/planning/batched-statements.js";

describe("batch parameters", () => {
  test("chunks keep order; the last one takes the rest", () => {
    expect(chunks([1, 2, 3, 4, 5], 2)).toEqual([[1, 2], [3, 4], [5]]);
    expect(chunks([1, 2], 5)).toEqual([[1, 2]]);
    expect(chunks([], 3)).toEqual([]);
  });

  test("rows become one array per column, NULLs kept in place", () => {
    expect(
      columnArrays(
        [
          ["1", "a"],
          ["2", null],
        ],
        2,
      ),
    ).toEqual([
      ["1", "2"],
      ["a", null],
    ]);
    expect(() => columnArrays([["1"]], 2)).toThrow(/outside the change's 1 values/);
  });
});
