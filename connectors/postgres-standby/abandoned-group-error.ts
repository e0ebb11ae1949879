import { DiffrelayError } from "../../src/errors/diffrelay-error.js";

/**
 * A statement the transaction grouper was asked to send after its session's
 * group was abandoned (rolled back as the session ends). Sent, it would run
 * outside any transaction and commit on its own, without the position that
 * covers it. Refusing it loses nothing: the next session resumes from the
 * standby's position.
 */
export class AbandonedGroupError extends DiffrelayError {
  override readonly name = "AbandonedGroupError";

  constructor(statement: string, topic: string, partition: number, nextOffset: bigint) {
    super(
      "transient",
      `${statement} refused on the standby of topic ${topic} partition ${partition}: its session's group was abandoned (rolled back), ` +
        `so the statement would commit on its own, without its position; the next session resumes from the standby's position (offset ${nextOffset} or before)`,
    );
  }
}
