import { Writable } from "node:stream";
import { describe, expect, it } from "vitest";
import { createLogger } from "../../../src/observability/logger.js";

/** A logger whose JSON lines go to memory instead of stdout. */
function captured(): { logger: ReturnType<typeof createLogger>; lines: () => Record<string, unknown>[] } {
  const chunks: string[] = [];
  const sink = new Writable({
    write(chunk, _encoding, done) {
      chunks.push(String(chunk));
      done();
    },
  });
  return {
    logger: createLogger("info", "test", sink),
    lines: () =>
      chunks
        .join("")
        .split("\n")
        .filter(Boolean)
        .map((l) => JSON.parse(l)),
  };
}

describe("the logger", () => {
  it("logs an err field that is not an Error (a message, a thrown string) instead of throwing", () => {
    const { logger, lines } = captured();
    expect(() => logger.info({ err: "epoch 3 is already claimed" }, "lost")).not.toThrow();
    expect(() => logger.info({ err: undefined }, "nothing")).not.toThrow();
    expect(lines()[0]).toMatchObject({ msg: "lost", err: { message: "epoch 3 is already claimed" } });
  });

  it("scrubs the password from an err field of any kind", () => {
    const { logger, lines } = captured();
    logger.warn({ err: new Error("connect to postgres://u:hunter2@db/x failed") }, "e");
    logger.warn({ err: "postgres://u:hunter2@db/x" }, "s");
    expect(JSON.stringify(lines())).not.toContain("hunter2");
  });
});
