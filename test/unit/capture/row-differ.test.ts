import { describe, expect, it } from "vitest";
import {
  OversizedValue,
  type TupleValue,
  UNCHANGED_TOAST,
} from "../../../connectors/postgres-source/pgoutput/pgoutput-decoder.js";
import {
  type CapturedChange,
  type KnownRelation,
  toChange,
} from "../../../connectors/postgres-source/row-differ.js";
import { ValueTooLargeError } from "../../../connectors/postgres-source/unpublishable-change.js";
import type { ValueBytes } from "../../../src/change/change-model.js";
import { TextBytes } from "../../../src/change/text-bytes.js";

const ref = { relationId: 7, version: 1 };
const relation: KnownRelation = {
  ref,
  schema: {
    relationId: 7,
    schema: "public",
    table: "accounts",
    replicaIdentity: "full",
    columns: ["id", "a", "b", "c", "d"].map((name) => ({
      name,
      typeOid: 25,
      typeName: "text",
      typeModifier: -1,
    })),
    keyColumns: [0],
    hasPrimaryKey: true,
  },
};

/** A tuple as the slot reader gives it: each text a range of one message's bytes. */
function tuple(...values: (string | null | typeof UNCHANGED_TOAST)[]): TupleValue<TextBytes>[] {
  const message = Buffer.from(values.map((v) => (typeof v === "string" ? `|${v}` : "")).join(""), "utf8");
  let at = 0;
  return values.map((v) => {
    if (typeof v !== "string") return v;
    const start = at + 1;
    at = start + Buffer.byteLength(v, "utf8");
    return new TextBytes(message, start, at);
  });
}

/** The change with its values decoded, to compare by content. */
function shown(change: CapturedChange): unknown {
  const text = (values: ValueBytes[]) => values.map((v) => (v === null ? null : v.toString()));
  if (change.kind === "update") return { ...change, key: text(change.key), values: text(change.values) };
  if (change.kind === "insert") return { ...change, values: text(change.values) };
  if (change.kind === "delete") return { ...change, key: text(change.key) };
  return change;
}

describe("toChange: an UPDATE under REPLICA IDENTITY FULL", () => {
  it("carries exactly the columns whose bytes differ, as the new bytes", () => {
    const long = "é".repeat(40);
    const change = shown(
      toChange(
        {
          tag: "update",
          relationId: 7,
          oldKind: "old",
          oldTuple: tuple("1", "same", "abc", null, `${long}x`),
          newTuple: tuple("1", "same", "abd", "", `${long}y`),
        },
        relation,
        100n,
        1024,
      ),
    );
    expect(change).toEqual({
      kind: "update",
      relation: ref,
      key: ["1"],
      changedColumns: [2, 3, 4],
      values: ["abd", "", `${long}y`],
    });
  });

  it("carries no column that is equal, long or short, NULL or empty, and never an unchanged TOASTed value", () => {
    const long = "z".repeat(500);
    const change = shown(
      toChange(
        {
          tag: "update",
          relationId: 7,
          oldKind: "old",
          oldTuple: tuple("1", long, null, "", UNCHANGED_TOAST),
          newTuple: tuple("1", long, null, "", UNCHANGED_TOAST),
        },
        relation,
        100n,
        1024,
      ),
    );
    expect(change).toEqual({
      kind: "update",
      relation: ref,
      key: ["1"],
      changedColumns: [],
      values: [],
    });
  });

  it("sends a NULL that became empty text and empty text that became NULL", () => {
    const change = shown(
      toChange(
        {
          tag: "update",
          relationId: 7,
          oldKind: "old",
          oldTuple: tuple("1", null, "", "x", "y"),
          newTuple: tuple("1", "", null, "x", "y"),
        },
        relation,
        100n,
        1024,
      ),
    );
    expect(change).toMatchObject({ changedColumns: [1, 2], values: ["", null] });
  });

  it("keys the update by the old key when the key changed", () => {
    const change = shown(
      toChange(
        {
          tag: "update",
          relationId: 7,
          oldKind: "old",
          oldTuple: tuple("1", "a", "b", "c", "d"),
          newTuple: tuple("2", "a", "b", "c", "d"),
        },
        relation,
        100n,
        1024,
      ),
    );
    expect(change).toEqual({
      kind: "update",
      relation: ref,
      key: ["1"],
      changedColumns: [0],
      values: ["2"],
    });
  });
});

describe("toChange: values above the limit", () => {
  it("refuses the row, naming the table, the column and the key decoded as text", () => {
    const message = {
      tag: "insert" as const,
      relationId: 7,
      newTuple: [...tuple("ключ-1", "a"), new OversizedValue(4096), null, null],
    };
    expect(() => toChange(message, relation, 0x16b3748n, 1024)).toThrow(ValueTooLargeError);
    expect(() => toChange(message, relation, 0x16b3748n, 1024)).toThrow(
      /public\.accounts: column b of the row with key \("ключ-1"\).*holds 4096 bytes/,
    );
  });
});
