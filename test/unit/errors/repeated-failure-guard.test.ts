import { describe, expect, it } from "vitest";
import { DiffrelayError } from "../../../src/errors/diffrelay-error.js";
import { failureSignature, RepeatedFailureGuard } from "../../../src/errors/repeated-failure-guard.js";

const serialization = (pid: number) =>
  Object.assign(new Error(`could not serialize access (backend ${pid})`), { code: "40001" });

describe("RepeatedFailureGuard", () => {
  it("reports a stall at the limit-th identical failure at one position, and at each one after", () => {
    const guard = new RepeatedFailureGuard(3);
    expect(guard.failed("offset 7", serialization(1), "e1")).toBeNull();
    expect(guard.failed("offset 7", serialization(2), "e2")).toBeNull();
    expect(guard.failed("offset 7", serialization(3), "e3")).toMatchObject({
      position: "offset 7",
      error: "e3",
      attempts: 3,
    });
    expect(guard.failed("offset 7", serialization(4), "e4")?.attempts).toBe(4);
    expect(guard.stall?.error).toBe("e4");
  });

  it("counts again from one when the position or the failure changes", () => {
    const guard = new RepeatedFailureGuard(2);
    guard.failed("offset 7", serialization(1), "a");
    expect(guard.failed("offset 8", serialization(1), "b")).toBeNull();
    expect(guard.failed("offset 8", new Error("connection refused"), "c")).toBeNull();
    expect(guard.failed("offset 8", new Error("connection refused"), "d")?.attempts).toBe(2);
  });

  it("is cleared once the process gets past the position", () => {
    const guard = new RepeatedFailureGuard(1);
    expect(guard.failed("LSN 0/10", serialization(1), "x")).not.toBeNull();
    guard.progressed();
    expect(guard.stall).toBeNull();
    expect(guard.failed("LSN 0/10", serialization(1), "x")?.attempts).toBe(1);
  });

  it("tells failures apart by kind, class and code, not by the numbers in their messages", () => {
    expect(failureSignature(serialization(1))).toBe(failureSignature(serialization(99)));
    const deadlock = Object.assign(new Error("could not serialize access (backend 1)"), { code: "40P01" });
    expect(failureSignature(deadlock)).not.toBe(failureSignature(serialization(1)));
    expect(failureSignature(new DiffrelayError("drift", "x"))).not.toBe(failureSignature(new Error("x")));
  });

  it("refuses a limit below one", () => {
    expect(() => new RepeatedFailureGuard(0)).toThrow(RangeError);
  });
});
