import type pg from "pg";
import { LogicalReplicationService } from "pg-logical-replication";
import { formatLsn, type Lsn, parseLsn } from "../../src/change/lsn.js";
import { withApplicationName } from "../../src/config/postgres-connection.js";
import { withValueFormat } from "../../src/sql/value-format.js";
import type { PgoutputMessage } from "./pgoutput/pgoutput-decoder.js";
import { DiffrelayPgoutputPlugin } from "./pgoutput/pgoutput-plugin.js";
import { SourceConfigurationError, type SourceProblem } from "./source-errors.js";

export interface SlotReaderLogger {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface SlotReaderOptions {
  connection: pg.ClientConfig | string;
  slotName: string;
  publicationName: string;
  /**
   * The connection's application_name (over one in the URL): how the server
   * names this client in pg_stat_replication and in synchronous_standby_names.
   */
  applicationName: string;
  /** The caller's durable position; PostgreSQL starts from the later of this and the slot's confirmed position. */
  startLsn?: Lsn;
  /**
   * Handles one decoded message, in stream order. The next message is not
   * delivered until the returned promise settles, and the socket is not read
   * meanwhile, so a slow sink slows the replication stream. A rejection stops
   * the reader (start() rejects with it); nothing after the last confirm() is
   * acknowledged, so a new reader streams it again.
   */
  onMessage(walStart: Lsn, msg: PgoutputMessage): Promise<void>;
  /** True when nothing received is waiting to become durable (every delivered transaction confirmed). */
  isIdle(): boolean;
  /** Values with more bytes of text stop the capture (capture.maxValueBytes). */
  maxValueBytes: number;
  /** How often a standby status update is sent regardless of traffic. Default 10 000 ms. */
  statusIntervalMs?: number;
  logger?: SlotReaderLogger;
}

interface PgError {
  code?: string;
  message: string;
}

/** Maps PostgreSQL errors that mean "misconfigured" to SourceConfigurationError; others pass through. */
export function classifySourceError(error: unknown, slotName: string, publicationName: string): unknown {
  if (!(error instanceof Error)) return error;
  const { code, message } = error as PgError;
  const wrap = (problem: SourceProblem, text: string) =>
    new SourceConfigurationError(problem, `${text} (PostgreSQL: ${message})`, { cause: error });
  if (code === "55006" && /replication slot .* is active for PID/i.test(message)) {
    return wrap("slot_in_use", `replication slot "${slotName}" is in use by another process`);
  }
  if (code === "42704" && /replication slot .* does not exist/i.test(message)) {
    return wrap("slot_missing", `replication slot "${slotName}" does not exist; run the source migration`);
  }
  if (code === "42704" && /publication .* does not exist/i.test(message)) {
    return wrap(
      "publication_missing",
      `publication "${publicationName}" does not exist; run the source migration`,
    );
  }
  if (code === "42501" || code === "28000") {
    return wrap(
      "permission_denied",
      "the source role may not stream logical replication (it needs the REPLICATION attribute and a pg_hba replication entry)",
    );
  }
  if (code === "28P01") return wrap("authentication_failed", "authentication to the source failed");
  if (code === "55000" && /wal_level/.test(message))
    return wrap("wal_level", "the source needs wal_level = logical");
  return error;
}

/** Milliseconds between the Unix epoch and 2000-01-01, PostgreSQL's epoch. */
const PG_EPOCH_UNIX_MS = 946_684_800_000;

/**
 * Reads a logical slot and acknowledges positions only when the caller says
 * they are durable. One reader is one connection: after start() settles,
 * construct a new reader from the durable position to reconnect.
 */
export class SlotReader {
  private readonly options: SlotReaderOptions;
  private readonly service: LogicalReplicationService;
  private readonly plugin: DiffrelayPgoutputPlugin;
  private readonly statusIntervalMs: number;

  private confirmed: Lsn;
  private serverWalEnd = 0n;
  private processedCount = 0;
  private inTransaction = false;

  private statusTimer: NodeJS.Timeout | null = null;
  private statusScheduled = false;
  private started = false;
  private stopping = false;
  private failure: unknown = null;
  private settle: ((error: unknown) => void) | null = null;

  constructor(options: SlotReaderOptions) {
    this.options = options;
    this.confirmed = options.startLsn ?? 0n;
    this.statusIntervalMs = options.statusIntervalMs ?? 10_000;
    const given: pg.ClientConfig =
      typeof options.connection === "string" ? { connectionString: options.connection } : options.connection;
    // The walsender formats values with its own session settings: pin the ones that change
    // text output, so captured values do not depend on the source's or the role's defaults.
    const clientConfig = withValueFormat(withApplicationName(given, options.applicationName));
    this.service = new LogicalReplicationService(clientConfig, {
      // The library's own acknowledgements follow receipt; ours follow durability.
      acknowledge: { auto: false, timeoutSeconds: 0 },
      // Awaits each async 'data' handler and pauses the socket meanwhile. Its queue holds at
      // most what one socket read delivered plus the stream's buffer: the socket is paused
      // before the first queued message is handled, and resumed only once the queue is empty.
      flowControl: { enabled: true },
    });
    this.plugin = new DiffrelayPgoutputPlugin({
      publicationNames: [options.publicationName],
      maxValueBytes: options.maxValueBytes,
      onDecodeError: (error) => this.fail(error),
    });
    this.service.on("data", (lsn: string, msg: PgoutputMessage | null) => this.handleData(lsn, msg));
    this.service.on("heartbeat", (lsn: string, _time: number, shouldRespond: boolean) =>
      this.handleKeepalive(lsn, shouldRespond),
    );
    this.service.on("error", (error: Error) => this.fail(error));
    this.service.on("start", () => {
      this.options.logger?.info(
        { slot: options.slotName, startLsn: formatLsn(this.confirmed) },
        "logical replication started",
      );
      this.sendStatus();
      this.statusTimer = setInterval(() => this.sendStatus(), this.statusIntervalMs);
    });
  }

  /** The highest position acknowledged to PostgreSQL as durable. */
  get confirmedLsn(): Lsn {
    return this.confirmed;
  }

  /** Bytes of pgoutput messages this reader has received. */
  get receivedBytes(): number {
    return this.plugin.parsedBytes;
  }

  /** The server's WAL end from its latest keepalive; with confirmedLsn, gives the slot's lag. */
  get lastServerWalEnd(): Lsn {
    return this.serverWalEnd;
  }

  /**
   * Streams until stop() (resolves) or a failure (rejects: a connection or
   * server error, a handler rejection, or a SourceConfigurationError that
   * reconnecting will not fix).
   */
  start(): Promise<void> {
    if (this.started) throw new Error("a SlotReader runs once; construct a new one to reconnect");
    this.started = true;
    return new Promise<void>((resolve, reject) => {
      this.settle = (error) => {
        this.settle = null;
        if (this.statusTimer) clearInterval(this.statusTimer);
        this.statusTimer = null;
        this.service.destroy().then(
          () => (error === null ? resolve() : reject(error)),
          () => (error === null ? resolve() : reject(error)),
        );
      };
      this.service.subscribe(this.plugin, this.options.slotName, formatLsn(this.confirmed)).then(
        () => {
          if (!this.stopping) this.fail(new Error("the source ended the replication stream"));
        },
        (error: unknown) => this.fail(error),
      );
    });
  }

  /** Sends a last status update and closes the connection; start() then resolves. */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.sendStatus();
    try {
      await this.service.stop();
    } finally {
      this.finish();
    }
  }

  /**
   * Ends the stream with this error, as a rejected onMessage would: start()
   * rejects with it, and nothing after the last confirm() is acknowledged. For
   * a sink that fails on its own, between messages (a produce that failed
   * after its retries), so that a quiet slot does not wait for the next
   * message to notice.
   */
  abort(error: unknown): void {
    this.fail(error);
  }

  /**
   * Everything up to `lsn` (a Commit's endLsn) is durable downstream. The slot's
   * confirmed_flush_lsn becomes exactly this position: PostgreSQL skips a
   * transaction whose commit record starts before it, and the next commit
   * record may start exactly at this endLsn.
   */
  confirm(lsn: Lsn): void {
    if (lsn <= this.confirmed) return;
    this.confirmed = lsn;
    // Coalesces a burst of confirms (one per transaction of a Kafka batch) into one status message.
    if (!this.statusScheduled) {
      this.statusScheduled = true;
      setImmediate(() => {
        this.statusScheduled = false;
        this.sendStatus();
      });
    }
  }

  private async handleData(lsn: string, msg: PgoutputMessage | null): Promise<void> {
    if (this.failure !== null || msg === null) return;
    try {
      await this.options.onMessage(parseLsn(lsn), msg);
      if (msg.tag === "begin") this.inTransaction = true;
      else if (msg.tag === "commit") this.inTransaction = false;
      this.processedCount++;
    } catch (error) {
      this.fail(error);
    }
  }

  private handleKeepalive(lsn: string, shouldRespond: boolean): void {
    const walEnd = parseLsn(lsn);
    if (walEnd > this.serverWalEnd) this.serverWalEnd = walEnd;
    // Keepalives are read as they arrive, ahead of queued data. Only when every message
    // parsed so far has been handled, no transaction is half delivered and the pipeline
    // holds nothing undurable does nothing before walEnd still need the slot; confirming
    // it then keeps an idle slot (or one whose tables are quiet) from pinning WAL.
    const advanced =
      walEnd > this.confirmed &&
      !this.inTransaction &&
      this.failure === null &&
      this.plugin.parsedCount === this.processedCount &&
      this.options.isIdle();
    if (advanced) this.confirmed = walEnd;
    if (shouldRespond || advanced) this.sendStatus();
  }

  /**
   * Standby status update ('r') written here rather than through the library's
   * acknowledge(), which reports lsn+1 (past the position, enough to skip a
   * commit starting there) and dates its clock from 1999-12-25 instead of 2000-01-01.
   */
  private sendStatus(): void {
    const connection = this.plugin.connection;
    if (connection === null || this.settle === null) return;
    const message = Buffer.allocUnsafe(34);
    message[0] = 0x72; // 'r'
    message.writeBigUInt64BE(this.confirmed, 1); // written
    message.writeBigUInt64BE(this.confirmed, 9); // flushed
    message.writeBigUInt64BE(this.confirmed, 17); // applied
    message.writeBigInt64BE(BigInt(Date.now() - PG_EPOCH_UNIX_MS) * 1000n, 25);
    message[33] = 0; // no reply requested
    connection.sendCopyFromChunk(message);
  }

  private fail(error: unknown): void {
    if (this.failure !== null || this.settle === null) return;
    if (this.stopping && /Connection\s+terminated/i.test(String(error))) return;
    this.failure = classifySourceError(error, this.options.slotName, this.options.publicationName);
    this.options.logger?.warn(
      { slot: this.options.slotName, err: this.failure },
      "logical replication failed",
    );
    this.settle(this.failure);
  }

  private finish(): void {
    if (this.settle === null) return;
    this.settle(this.failure);
  }
}
