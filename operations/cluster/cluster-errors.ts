import { DiffrelayError } from "../../src/errors/diffrelay-error.js";

/**
 * Another role change got there first: the epoch was claimed by someone else,
 * or the cluster moved to a later epoch. Nothing was changed (exit 9).
 */
export class EpochConflictError extends DiffrelayError {
  override readonly name = "EpochConflictError";

  constructor(message: string) {
    super("conflict", message);
  }
}
