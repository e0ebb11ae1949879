import { DiffrelayError } from "../../src/errors/diffrelay-error.js";

/**
 * A message on the topic that the applier must not apply: it does not decode,
 * has a format version this build does not know, or comes from another source.
 * Nothing after it is applied unless a dead-letter topic is configured.
 */
export class BadFrameError extends DiffrelayError {
  override readonly name = "BadFrameError";

  constructor(
    readonly topic: string,
    readonly partition: number,
    readonly offset: string,
    problem: string,
    options?: { cause?: unknown },
  ) {
    super(
      "bad-frame",
      `bad message at topic ${topic} partition ${partition} offset ${offset}: ${problem}`,
      options,
    );
  }
}
