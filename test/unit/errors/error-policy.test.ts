import { createRequire } from "node:module";
import kafkajs from "kafkajs";
import { describe, expect, it } from "vitest";
import { SourceConfigurationError } from "../../../connectors/postgres-source/source-errors.js";
import { BadFrameError } from "../../../connectors/postgres-standby/bad-frame-error.js";
import { DriftError, SchemaDriftError } from "../../../connectors/postgres-standby/drift-error.js";
import { SeedInterruptedError, TopicGapError } from "../../../connectors/postgres-standby/position-errors.js";
import { ConfigError } from "../../../src/config/config-error.js";
import { errorPolicy } from "../../../src/errors/error-policy.js";
import { EXIT } from "../../../src/errors/exit-codes.js";
import { PublishError } from "../../../src/kafka/ordered-publisher.js";
import { WireFormatError } from "../../../src/wire/wire-format-error.js";

/** kafkajs's table of broker error codes, the one its protocol layer raises from. */
const { createErrorFromCode } = createRequire(import.meta.url)("kafkajs/src/protocol/error") as {
  createErrorFromCode: (code: number) => Error;
};

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

describe("errorPolicy on a failed produce", () => {
  // kafkajs's own errors, as its producer hands them out after its retrier (src/retry/index.js).
  const { KafkaJSNumberOfRetriesExceeded, KafkaJSConnectionError } = kafkajs;
  // Its typings omit the options the retrier passes (`cause: e.cause || e`).
  const KafkaJSNonRetriableError = kafkajs.KafkaJSNonRetriableError as unknown as new (
    e: Error,
    options: { cause: Error },
  ) => Error;
  const refusal = (code: number) => createErrorFromCode(code);
  const failedSend = (cause: Error) =>
    new PublishError("Kafka did not acknowledge a produce request", {
      cause: new KafkaJSNonRetriableError(cause, { cause }),
    });

  it("stops with exit 7 when Kafka refuses the records for good, instead of retrying from the slot forever", () => {
    for (const code of [
      10 /* MESSAGE_TOO_LARGE */, 18 /* RECORD_LIST_TOO_LARGE */, 87 /* INVALID_RECORD */,
    ]) {
      // The session wraps the publisher's error once more: the refusal is found down the cause chain.
      const err = new PublishError("session ended", { cause: failedSend(refusal(code)) });
      expect(errorPolicy(err), `code ${code}`).toEqual({
        kind: "unpublishable",
        retry: false,
        exitCode: EXIT.unpublishable,
      });
    }
  });

  it("stops with exit 3 on an authorization refusal", () => {
    expect(errorPolicy(failedSend(refusal(29 /* TOPIC_AUTHORIZATION_FAILED */)))).toMatchObject({
      kind: "setup",
      exitCode: EXIT.setup,
    });
  });

  it("retries a broker that is away, and what a new session's fresh producer cures", () => {
    const away = new KafkaJSNumberOfRetriesExceeded(new KafkaJSConnectionError("Connection timeout"), {
      retryCount: 5,
      retryTime: 1000,
    });
    expect(errorPolicy(new PublishError("send failed", { cause: away }))).toMatchObject({ retry: true });
    expect(errorPolicy(failedSend(refusal(45 /* OUT_OF_ORDER_SEQUENCE_NUMBER */)))).toMatchObject({
      kind: "transient",
      retry: true,
    });
  });
});
