import { describe, expect, test } from "vitest";
import {
  foldUpdates,
  mergedUpdate,
} from "../../../../connectors/postgres-standby/planning/update-folding.js";
import type { UpdateChange } from "../../../../src/change/change-model.js";
import { update } from "../fixtures.js";

const ref = { relationId: 1, version: 1 };
const upd = (key: string[], columns: number[], values: (string | null)[], index: number) => ({
  change: update(ref, key, columns, values) as UpdateChange,
  index,
});

describe("update folding", () => {
  test("rows keep the order of their first update; a composite key is one row", () => {
    const folded = foldUpdates([
      upd(["b", "1"], [2], ["x"], 0),
      upd(["a", "1"], [2], ["y"], 1),
      upd(["b", "1"], [3], [null], 2),
      upd(["b", "2"], [2], ["z"], 3),
    ]);
    expect(folded.map((row) => [row.key, row.changeIndices])).toEqual([
      [
        ["b", "1"],
        [0, 2],
      ],
      [["a", "1"], [1]],
      [["b", "2"], [3]],
    ]);
    expect(folded[0]?.columns).toEqual([2, 3]);
    expect(folded[0]?.values).toEqual(["x", null]);
  });

  test("one-column keys fold by their text alone, however JSON-like it looks", () => {
    const folded = foldUpdates([
      upd(['["1"]'], [1], ["a"], 0),
      upd(["1"], [1], ["b"], 1),
      upd(['"1"'], [1], ["c"], 2),
      upd(["1"], [2], ["d"], 3),
    ]);
    expect(folded.map((row) => [row.key, row.changeIndices])).toEqual([
      [['["1"]'], [0]],
      [["1"], [1, 3]],
      [['"1"'], [2]],
    ]);
  });

  test("a folded row's columns come out in source order, as one update with its values", () => {
    const [row] = foldUpdates([upd(["1"], [1, 3], ["a", "c"], 4), upd(["1"], [2, 3], ["b", "C"], 5)]);
    if (row === undefined) throw new Error("no row");
    expect(row.columns).toEqual([1, 2, 3]);
    expect(mergedUpdate(ref, row)).toEqual({
      kind: "update",
      relation: ref,
      key: ["1"],
      changedColumns: [1, 2, 3],
      values: ["a", "b", "C"],
    });
  });

  test("a row updated once keeps its change's arrays; a later update of it leaves the changes as they were", () => {
    const first = upd(["1"], [1, 3], ["a", "c"], 0);
    const second = upd(["1"], [2, 3], ["b", "C"], 1);
    const [once] = foldUpdates([first]);
    expect(once?.columns).toBe(first.change.changedColumns);
    expect(once?.values).toBe(first.change.values);
    const [twice] = foldUpdates([first, second]);
    expect(twice?.columns).toEqual([1, 2, 3]);
    expect(twice?.values).toEqual(["a", "b", "C"]);
    expect(first.change).toMatchObject({ changedColumns: [1, 3], values: ["a", "c"] });
    expect(second.change).toMatchObject({ changedColumns: [2, 3], values: ["b", "C"] });
  });

  test("an update with fewer values than changed columns is refused", () => {
    expect(() => foldUpdates([upd(["1"], [1, 2], ["a"], 0)])).toThrow(/outside the change's 1 values/);
  });
});
