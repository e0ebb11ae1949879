import type pg from "pg";
import { DiffrelayError } from "../../../src/errors/diffrelay-error.js";
import { quoteIdent, quoteLiteral } from "../../../src/sql/quote.js";

export class SourceEncodingError extends DiffrelayError {
  override name = "SourceEncodingError";

  constructor(message: string, options?: { cause?: unknown }) {
    super("setup", message, options);
  }
}

/** Text values are decoded as UTF-8; any other server encoding would corrupt them silently. */
export async function requireUtf8Source(client: pg.Client): Promise<void> {
  const encoding = await client.query<{ server_encoding: string }>("SHOW server_encoding");
  const serverEncoding = encoding.rows[0]?.server_encoding;
  if (serverEncoding !== "UTF8") {
    throw new SourceEncodingError(
      `source database encoding is ${serverEncoding ?? "unknown"}; diffrelay requires UTF8 (values are captured as UTF-8 text)`,
    );
  }
}

/**
 * START_REPLICATION for pgoutput protocol version 1 with logical messages
 * (heartbeats, DDL), from `startLsn` in PostgreSQL's X/X form.
 */
export function startReplicationCommand(
  slotName: string,
  startLsn: string,
  publicationNames: string[],
): string {
  if (publicationNames.length === 0) throw new Error("at least one publication name is required");
  // Each name is quoted as an identifier inside the option's string literal, because
  // pgoutput splits publication_names like an identifier list (case folding, commas).
  const publications = publicationNames.map(quoteIdent).join(",");
  return (
    `START_REPLICATION SLOT ${quoteIdent(slotName)} LOGICAL ${startLsn} ` +
    `(proto_version '1', publication_names ${quoteLiteral(publications)}, messages 'true')`
  );
}
