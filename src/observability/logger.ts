import pino, { type Logger } from "pino";
import { redact } from "./redact.js";

export type { Logger };

/**
 * JSON lines on stdout. Passwords are scrubbed from every message and string
 * field, so a connection string pasted into an error cannot leak.
 */
export function createLogger(level: string, name: string, destination?: pino.DestinationStream): Logger {
  const options: pino.LoggerOptions = {
    name,
    level,
    base: { pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label) => ({ level: label }) },
    hooks: {
      logMethod(args, method) {
        method.apply(this, args.map(scrub) as Parameters<typeof method>);
      },
    },
    serializers: { err: serializeError },
  };
  return destination ? pino(options, destination) : pino(options);
}

/** An `err` field: an Error's name, message and stack, or whatever else was thrown as text; never throws. */
function serializeError(err: unknown): object {
  if (!(err instanceof Error)) return { message: redact(String(err)) };
  return {
    type: err.name,
    message: redact(String(err.message)),
    stack: err.stack && redact(err.stack),
  };
}

function scrub(value: unknown): unknown {
  if (typeof value === "string") return redact(value);
  if (value instanceof Error) return value;
  if (value && typeof value === "object" && !Array.isArray(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = typeof v === "string" ? redact(v) : v;
    return out;
  }
  return value;
}
