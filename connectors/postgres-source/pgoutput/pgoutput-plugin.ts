import type pg from "pg";
import type { LogicalReplicationService } from "pg-logical-replication";
import { DiffrelayError } from "../../../src/errors/diffrelay-error.js";
import { quoteIdent, quoteLiteral } from "../../../src/sql/quote.js";
import { decodePgoutput, type PgoutputMessage } from "./pgoutput-decoder.js";

/** The plugin shape `LogicalReplicationService.subscribe` accepts (its base class is not exported). */
type ReplicationPlugin = Parameters<LogicalReplicationService["subscribe"]>[0];

/** The part of pg's internal Connection used to write CopyData frames on the replication stream. */
export interface CopyConnection {
  sendCopyFromChunk(chunk: Buffer): boolean;
}

export interface PgoutputPluginOptions {
  publicationNames: string[];
  /** Values with more bytes of text are not decoded: the capture refuses their row (capture.maxValueBytes). */
  maxValueBytes: number;
  /**
   * Called instead of throwing when a message cannot be decoded: the library
   * calls `parse` inside the socket's data callback, where a throw would be an
   * uncaught exception rather than an error of this stream.
   */
  onDecodeError(error: unknown): void;
}

export class SourceEncodingError extends DiffrelayError {
  override name = "SourceEncodingError";

  constructor(message: string, options?: { cause?: unknown }) {
    super("setup", message, options);
  }
}

/**
 * pgoutput with proto_version 1, decoded by our own decoder so values stay in
 * PostgreSQL's text form. Counts what it parsed, so the reader can tell whether
 * every received message has been handled.
 */
export class DiffrelayPgoutputPlugin implements ReplicationPlugin {
  readonly options: PgoutputPluginOptions;
  /** Messages decoded since construction, in receipt order. */
  parsedCount = 0;
  /** Bytes of the pgoutput messages handed to parse(): what logical replication itself ships. */
  parsedBytes = 0;
  /** The replication connection, once START_REPLICATION was issued on it. */
  connection: CopyConnection | null = null;

  constructor(options: PgoutputPluginOptions) {
    if (options.publicationNames.length === 0) throw new Error("at least one publication name is required");
    this.options = options;
  }

  get name(): string {
    return "pgoutput";
  }

  parse(buffer: Buffer): PgoutputMessage | null {
    this.parsedBytes += buffer.length;
    try {
      const message = decodePgoutput(buffer, this.options.maxValueBytes);
      this.parsedCount++;
      return message;
    } catch (error) {
      this.options.onDecodeError(error);
      return null;
    }
  }

  async start(client: pg.Client, slotName: string, lastLsn: string): Promise<unknown> {
    // Text values are decoded as UTF-8; any other server encoding would corrupt them silently.
    const encoding = await client.query<{ server_encoding: string }>("SHOW server_encoding");
    const serverEncoding = encoding.rows[0]?.server_encoding;
    if (serverEncoding !== "UTF8") {
      throw new SourceEncodingError(
        `source database encoding is ${serverEncoding ?? "unknown"}; diffrelay requires UTF8 (values are captured as UTF-8 text)`,
      );
    }
    // Each name is quoted as an identifier inside the option's string literal, because
    // pgoutput splits publication_names like an identifier list (case folding, commas).
    const publications = this.options.publicationNames.map(quoteIdent).join(",");
    const sql =
      `START_REPLICATION SLOT ${quoteIdent(slotName)} LOGICAL ${lastLsn} ` +
      `(proto_version '1', publication_names ${quoteLiteral(publications)}, messages 'true')`;
    this.connection = (client as unknown as { connection: CopyConnection }).connection;
    return client.query(sql);
  }
}
