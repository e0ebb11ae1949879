import { DiffrelayError } from "../../src/errors/diffrelay-error.js";

/** What is wrong with the source, for callers that treat one problem specially (a busy slot). */
export type SourceProblem =
  | "slot_in_use"
  | "slot_missing"
  | "publication_missing"
  | "permission_denied"
  | "authentication_failed"
  | "wal_level"
  | "not_capturable"
  | "zero_loss";

/** A problem with the source's configuration that reconnecting will not fix. */
export class SourceConfigurationError extends DiffrelayError {
  override name = "SourceConfigurationError";

  constructor(
    readonly problem: SourceProblem,
    message: string,
    options?: { cause?: unknown },
  ) {
    super("setup", message, options);
  }
}
