export type SourceErrorKind =
  | "slot_in_use"
  | "slot_missing"
  | "publication_missing"
  | "permission_denied"
  | "authentication_failed"
  | "wal_level"
  | "encoding"
  | "not_capturable";

/** A problem with the source's configuration that reconnecting will not fix. */
export class SourceConfigurationError extends Error {
  override name = "SourceConfigurationError";
  readonly retryable = false;

  constructor(
    readonly kind: SourceErrorKind,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
