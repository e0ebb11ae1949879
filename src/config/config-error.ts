import { DiffrelayError } from "../errors/diffrelay-error.js";

/** A configuration problem, found before anything connects. Exit code 2. */
export class ConfigError extends DiffrelayError {
  override name = "ConfigError";

  constructor(message: string, options?: { cause?: unknown }) {
    super("configuration", message, options);
  }
}
