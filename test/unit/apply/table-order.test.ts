import { describe, expect, it } from "vitest";
import { orderByTable } from "../../../connectors/postgres-standby/table-order.js";
import type { Change } from "../../../src/change/change-model.js";

const ref = (relationId: number) => ({ relationId, version: 1 });
const insert = (rel: number, id: string): Change => ({ kind: "insert", relation: ref(rel), values: [id] });
const update = (rel: number, id: string): Change => ({
  kind: "update",
  relation: ref(rel),
  key: [id],
  changedColumns: [1],
  values: ["x"],
});

describe("orderByTable", () => {
  it("gathers each table's changes, keeping their order within the table", () => {
    const changes = [update(1, "a"), insert(2, "p"), update(1, "b"), insert(2, "q"), update(1, "a")];
    expect(orderByTable(changes)).toEqual([0, 2, 4, 1, 3]);
  });

  it("moves nothing across a truncate, DDL or sequence change", () => {
    const changes: Change[] = [
      insert(1, "a"),
      insert(2, "p"),
      { kind: "truncate", relations: [ref(1), ref(2)], cascade: false, restartIdentity: false },
      insert(2, "q"),
      insert(1, "b"),
      { kind: "ddl", searchPath: "public", command: "ALTER TABLE t ADD c int" },
      insert(1, "c"),
      { kind: "sequence", sequences: [] },
      insert(2, "r"),
      insert(1, "d"),
    ];
    expect(orderByTable(changes)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });

  it("returns every index once", () => {
    const changes = Array.from({ length: 50 }, (_, i) => insert(i % 7, String(i)));
    const order = orderByTable(changes);
    expect([...order].sort((a, b) => a - b)).toEqual(changes.map((_, i) => i));
  });
});
