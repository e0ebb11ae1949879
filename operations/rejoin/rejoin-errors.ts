import { DiffrelayError } from "../../src/errors/diffrelay-error.js";

/** Rejoining cannot proceed as things are (exit 3); nothing was repaired. */
export class RejoinRefusedError extends DiffrelayError {
  override readonly name = "RejoinRefusedError";

  constructor(message: string) {
    super("setup", message);
  }
}

/** The old primary is not what its own WAL says (exit 4): a row an undo needs is not there. */
export class RejoinDriftError extends DiffrelayError {
  override readonly name = "RejoinDriftError";

  constructor(message: string) {
    super("drift", message);
  }
}
