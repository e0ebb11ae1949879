/** A configuration problem, found before anything connects. Exit code 2. */
export class ConfigError extends Error {
  override name = "ConfigError";
}
