import { describe, expect, it } from "vitest";
import { SourceConfigurationError } from "../../../connectors/postgres-source/source-errors.js";
import { BadFrameError } from "../../../connectors/postgres-standby/bad-frame-error.js";
import { DriftError, SchemaDriftError } from "../../../connectors/postgres-standby/drift-error.js";
import { SeedInterruptedError, TopicGapError } from "../../../connectors/postgres-standby/position-errors.js";
import { ConfigError } from "../../../src/config/config-error.js";
import { errorPolicy } from "../../../src/errors/error-policy.js";
import { EXIT } from "../../../src/errors/exit-codes.js";
import { WireFormatError } from "../../../src/wire/wire-format-error.js";

const position = { commitLsn: 0x1_0000_0010n, topic: "t", partition: 0, offset: "7" };

describe("errorPolicy", () => {
  it("retries what is not diffrelay's own (a dropped connection, a broker away) and exits 1 on it", () => {
    const reset = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
    expect(errorPolicy(reset)).toEqual({ kind: "transient", retry: true, exitCode: EXIT.failure });
    expect(errorPolicy("a string")).toMatchObject({ retry: true });
  });

  it("stops, with the exit code operators script against, on every error that needs a person", () => {
    const cases: Array<[unknown, string, number]> = [
      [new ConfigError("config: bad"), "configuration", EXIT.config],
      [new SourceConfigurationError("wal_level", "needs wal_level = logical"), "setup", EXIT.setup],
      [
        new DriftError({
          reason: "row-missing",
          change: "update",
          schema: "public",
          table: "t",
          key: { id: "1" },
          changeIndex: 0,
          position,
        }),
        "drift",
        EXIT.drift,
      ],
      [new SchemaDriftError({ schema: "public", table: "t", column: null, problem: "missing" }), "drift", 4],
      [new SeedInterruptedError("t", "2026-01-01"), "seed-interrupted", EXIT.drift],
      [new TopicGapError("t", 0, 10n, 20n), "topic-gap", EXIT.drift],
      [new BadFrameError("t", 0, "3", "empty message"), "bad-frame", EXIT.badFrame],
      [new WireFormatError("bad-magic", 0, "not DR"), "bad-frame", EXIT.badFrame],
    ];
    for (const [err, kind, exitCode] of cases) {
      expect(errorPolicy(err), String(err)).toEqual({ kind, retry: false, exitCode });
    }
  });

  it("names the topic, the offset it needs and the earliest one left, and what to do, for a gap", () => {
    expect(new TopicGapError("diffrelay.app", 0, 10n, 20n).message).toBe(
      "gap in topic diffrelay.app partition 0: the standby needs offset 10 next, but the earliest offset left is 20; re-seed the standby with diffrelay seed",
    );
  });
});
