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
    /** Set when the topic ends below the expected offset: it was recreated (or truncated). */
    readonly endOffset?: bigint,
  ) {
    const needs =
      expectedOffset === null
        ? "the standby has no position and the topic no longer starts at offset 0"
        : `the standby needs offset ${expectedOffset} next`;
    const ends =
      endOffset === undefined
        ? ""
        : ` and the topic ends at offset ${endOffset}, below the standby's position (was the topic recreated?)`;
    super(
      "topic-gap",
      `gap in topic ${topic} partition ${partition}: ${needs}, but the earliest offset left is ${earliestOffset}${ends}; re-seed the standby with diffrelay seed`,
    );
  }
}

/**
 * Refuses a start position the topic does not hold: below its earliest offset
 * (records removed) or beyond its end (a recreated topic whose offsets started
 * again from 0). Checked before each session seeks, since kafkajs would reset
 * an out-of-range fetch to the earliest offset and carry on.
 */
export function requireOffsetInTopic(
  topic: string,
  partition: number,
  nextOffset: bigint,
  offsets: { low: bigint; high: bigint },
): void {
  if (nextOffset < offsets.low) throw new TopicGapError(topic, partition, nextOffset, offsets.low);
  if (nextOffset > offsets.high)
    throw new TopicGapError(topic, partition, nextOffset, offsets.low, offsets.high);
}
