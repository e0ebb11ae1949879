import type { DdlChange, SequenceChange, SequencePosition } from "../../src/change/change-model.js";
import type { LogicalMessage } from "./pgoutput/pgoutput-decoder.js";

/** Written by the source's event triggers (migrations/source/003_ddl_capture.sql). */
export const DDL_PREFIX = "diffrelay.ddl";
/** Written by the capture's sequence tracker. */
export const SEQUENCES_PREFIX = "diffrelay.sequences";

/**
 * Turns one of diffrelay's transactional logical messages into a change, in
 * its place within the transaction; any other prefix belongs to someone else
 * and yields null.
 */
export function toMessageChange(message: LogicalMessage): DdlChange | SequenceChange | null {
  if (!message.transactional) return null;
  if (message.prefix === DDL_PREFIX) {
    const body = parseJson(message) as { search_path?: unknown; command?: unknown };
    if (typeof body.search_path !== "string" || typeof body.command !== "string") {
      throw new Error(
        `${DDL_PREFIX} message without search_path and command: ${message.content.toString("utf8")}`,
      );
    }
    return { kind: "ddl", searchPath: body.search_path, command: body.command };
  }
  if (message.prefix === SEQUENCES_PREFIX) {
    const body = parseJson(message) as SequencePosition[];
    if (!Array.isArray(body)) throw new Error(`${SEQUENCES_PREFIX} message is not a list`);
    return { kind: "sequence", sequences: body };
  }
  return null;
}

function parseJson(message: LogicalMessage): unknown {
  try {
    return JSON.parse(message.content.toString("utf8"));
  } catch (err) {
    throw new Error(`${message.prefix} message is not JSON: ${(err as Error).message}`);
  }
}
