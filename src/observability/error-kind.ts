/**
 * Where a failure came from, as a metric label. The set is closed so that an
 * error message can never become a label value (unbounded series).
 */
export type TransportErrorKind = "postgres" | "kafka" | "other";

export function transportErrorKind(err: unknown): TransportErrorKind {
  if (!(err instanceof Error)) return "other";
  // kafkajs wraps every failure it reports, socket errors included, in a KafkaJS* error.
  if (err.name.startsWith("KafkaJS")) return "kafka";
  const code = (err as { code?: unknown }).code;
  // pg reports server errors with their SQLSTATE, and lost connections as plain errors or node socket errors.
  if (typeof code === "string" && (/^[0-9A-Z]{5}$/.test(code) || code.startsWith("E"))) return "postgres";
  if (/connection terminated|terminating connection|server closed the connection/i.test(err.message))
    return "postgres";
  return "other";
}
