import { describe, expect, test } from "vitest";
import { formatLsn, parseLsn } from "../../../src/change/lsn.js";

describe("LSN text", () => {
  test("both halves parse as 32-bit hex, padded or not, in either case", () => {
    expect(parseLsn("0/163B1A8")).toBe(0x163b1a8n);
    expect(parseLsn("00000000/0163B1A8")).toBe(0x163b1a8n);
    expect(parseLsn("1a/ff")).toBe((0x1an << 32n) | 0xffn);
    expect(parseLsn("FFFFFFFF/FFFFFFFF")).toBe(0xffff_ffff_ffff_ffffn);
    expect(parseLsn(" 2/0 ")).toBe(2n << 32n);
  });

  test("formatting is PostgreSQL's own, and parsing undoes it", () => {
    for (const lsn of [0n, 1n, 0xffff_ffffn, 1n << 32n, 0x1234_5678_9abc_def0n, 0xffff_ffff_ffff_ffffn]) {
      expect(parseLsn(formatLsn(lsn))).toBe(lsn);
    }
    expect(formatLsn(0x1_0000_00a0n)).toBe("1/A0");
  });

  test("anything else is refused, not read as a prefix", () => {
    for (const text of [
      "",
      "0",
      "0/",
      "/1",
      "1/2/3",
      "0x1/2",
      "1/2z",
      "123456789/0",
      "0/123456789",
      "-1/0",
    ]) {
      expect(() => parseLsn(text)).toThrow(/not an LSN/);
    }
  });
});
