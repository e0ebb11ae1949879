import { DiffrelayError } from "../../src/errors/diffrelay-error.js";

/** A seed of the standby started and did not finish: applying on top of half-copied tables would diverge. */
export class SeedInterruptedError extends DiffrelayError {
  override readonly name = "SeedInterruptedError";

  constructor(
    readonly topic: string,
    readonly startedAt: string,
  ) {
    super(
      "seed-interrupted",
      `a seed of this standby for topic ${topic} started at ${startedAt} did not finish; its tables are partly copied. Run diffrelay seed again`,
    );
  }
}

/**
 * The message the standby needs next is no longer in the topic (retention,
 * deleted records, a recreated topic): applying from the earliest one left
 * would skip transactions. Only a new seed makes the standby a copy again.
 */
export class TopicGapError extends DiffrelayError {
  override readonly name = "TopicGapError";

  constructor(
    readonly topic: string,
    readonly partition: number,
    /** The offset the standby's position needs next; null when the standby has no position yet. */
    readonly expectedOffset: bigint | null,
    readonly earliestOffset: bigint,
  ) {
    const needs =
      expectedOffset === null
        ? "the standby has no position and the topic no longer starts at offset 0"
        : `the standby needs offset ${expectedOffset} next`;
    super(
      "topic-gap",
      `gap in topic ${topic} partition ${partition}: ${needs}, but the earliest offset left is ${earliestOffset}; seed it with diffrelay seed`,
    );
  }
}
