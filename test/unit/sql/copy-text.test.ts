import { describe, expect, it } from "vitest";
import type { ColumnValue } from "../../../src/change/change-model.js";
import { TextBytes } from "../../../src/change/text-bytes.js";
import { CopyTextWriter } from "../../../src/sql/copy-text.js";

function copyText(rows: ColumnValue[][], initialBytes?: number): string {
  const writer = new CopyTextWriter(initialBytes);
  for (const row of rows) writer.row(row.length, (i) => row[i] as ColumnValue);
  return writer.bytes().toString("utf8");
}

describe("CopyTextWriter", () => {
  it("writes values tab-separated, one line per row, NULL as \\N", () => {
    expect(
      copyText([
        ["1", "a", null],
        ["2", "", "c"],
      ]),
    ).toBe("1\ta\t\\N\n2\t\tc\n");
  });

  it("escapes only what COPY's text format reads: backslash, tab, line ends", () => {
    expect(copyText([["a\\b", "t\tx", "l\nm", "r\rs", "\"q\" 's' ,;|"]])).toBe(
      "a\\\\b\tt\\tx\tl\\nm\tr\\rs\t\"q\" 's' ,;|\n",
    );
  });

  it("keeps multi-byte UTF-8 as it is, also across a buffer's growth", () => {
    const long = "ü€😀".repeat(5_000);
    const rows = [
      ["é", long],
      [long, "\\N as text"],
    ];
    const bytes = new CopyTextWriter(8);
    for (const row of rows) bytes.row(2, (i) => row[i] as string);
    expect(bytes.bytes().equals(Buffer.from(`é\t${long}\n${long}\t\\\\N as text\n`, "utf8"))).toBe(true);
  });

  it("writes many rows past its first buffer", () => {
    const rows = Array.from({ length: 10_000 }, (_, i) => [String(i), `v${i}`]);
    expect(copyText(rows, 16)).toBe(rows.map((r) => `${r.join("\t")}\n`).join(""));
  });

  it("writes a value given as its UTF-8 bytes exactly as the same value given as text", () => {
    const values = [
      "plain",
      "",
      "a\\b\tc\nd\re",
      "\\".repeat(40),
      "é€😀 and a tab\t",
      "x".repeat(33),
      `${"y".repeat(40)}\n`,
      "ü€😀".repeat(3_000),
    ];
    // Each value in a buffer of its own, with bytes before and after it that must not be written.
    const asBytes = (text: string): TextBytes => {
      const buf = Buffer.from(`\t\\${text}\n\\`, "utf8");
      return new TextBytes(buf, 2, buf.length - 2);
    };
    const fromText = new CopyTextWriter(8);
    const fromBytes = new CopyTextWriter(8);
    for (const value of values) {
      const row: ColumnValue[] = [value, null, "1"];
      fromText.row(3, (i) => row[i] as ColumnValue);
      fromBytes.row(3, (i) => (i === 0 ? asBytes(value) : (row[i] as ColumnValue)));
    }
    expect(fromBytes.bytes().toString("utf8")).toBe(fromText.bytes().toString("utf8"));
    expect(fromBytes.bytes().equals(fromText.bytes())).toBe(true);
  });

  it("writes nothing for no rows", () => {
    expect(new CopyTextWriter().bytes().length).toBe(0);
  });
});
