import { describe, expect, it } from "vitest";
import { closeQuietly } from "../../../src/errors/close-quietly.js";

describe("closeQuietly", () => {
  it("waits for the close and drops only the close's own error", async () => {
    const order: string[] = [];
    const closing = new Promise<void>((_, reject) =>
      setTimeout(() => {
        order.push("closed");
        reject(new Error("socket already gone"));
      }, 5),
    );
    await expect(closeQuietly(closing)).resolves.toBeUndefined();
    order.push("after");
    expect(order).toEqual(["closed", "after"]);
    await expect(closeQuietly(undefined)).resolves.toBeUndefined();
  });
});
