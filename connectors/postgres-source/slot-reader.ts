import pg from "pg";
import { formatLsn, type Lsn } from "../../src/change/lsn.js";
import type { TextBytes } from "../../src/change/text-bytes.js";
import { withApplicationName } from "../../src/config/postgres-connection.js";
import { closeQuietly } from "../../src/errors/close-quietly.js";
import { withValueFormat } from "../../src/sql/value-format.js";
import { decodePgoutputBytes, type PgoutputMessage } from "./pgoutput/pgoutput-decoder.js";
import { requireUtf8Source, startReplicationCommand } from "./pgoutput/start-replication.js";
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
   * Handles one decoded message, in stream order. Returns undefined when done
   * with it, or a promise: then the next message is not delivered until it
   * settles, and the socket is not read meanwhile, so a slow sink slows the
   * replication stream. A throw or rejection stops the reader (start() rejects
   * with it); nothing after the last confirm() is acknowledged, so a new reader
   * streams it again.
   *
   * Row values are ranges of their UTF-8 bytes in the socket's receive
   * buffer, which pg reuses for later reads: they hold until onMessage
   * returns, and a handler that keeps them longer (for its promise) copies them.
   */
  onMessage(msg: PgoutputMessage<TextBytes>): Promise<void> | undefined;
  /** True when nothing received is waiting to become durable (every delivered transaction confirmed). */
  isIdle(): boolean;
  /** Values with more bytes of text stop the capture (capture.maxValueBytes). */
  maxValueBytes: number;
  /**
   * How long a confirmed position may wait to be sent, so that one status
   * update carries many confirms; 0 sends it on the event loop's next turn.
   * Asked at each confirm: a capture that a commit may be waiting for
   * (synchronous_standby_names names it) must answer 0.
   */
  statusDelayMs(): number;
  /**
   * Whether a position may be acknowledged to the server at this instant (a
   * cluster node's lease). When not, status updates repeat the last position
   * acknowledged: a commit waiting for this capture (zero-loss mode) is never
   * released by a capture that is no longer the primary's. Unset: always.
   */
  mayAcknowledge?: () => boolean;
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

/** CopyData message types of the streaming replication protocol. */
const XLOG_DATA = 0x77; // 'w'
const PRIMARY_KEEPALIVE = 0x6b; // 'k'
/** How long stop() waits for the server to close the stream before closing it itself. */
const STOP_GRACE_MS = 5_000;
/** 'w', WAL start, WAL end and send time come before the pgoutput message. */
const XLOG_DATA_HEADER_BYTES = 25;

/** The parts of pg's internal Connection that a replication stream uses. */
interface ReplicationConnection {
  on(event: "copyData", listener: (message: { chunk: Buffer }) => void): void;
  once(event: "replicationStart", listener: () => void): void;
  sendCopyFromChunk(chunk: Buffer): boolean;
  stream: { pause(): void; resume(): void; end(): void };
}

/**
 * Reads a logical slot and acknowledges positions only when the caller says
 * they are durable. One reader is one connection: after start() settles,
 * construct a new reader from the durable position to reconnect.
 *
 * It speaks the replication protocol over pg's connection itself, decoding
 * each CopyData straight into a message and handing it over synchronously,
 * because per-message events and promises were a large share of the capture's
 * CPU.
 */
export class SlotReader {
  private readonly options: SlotReaderOptions;
  private readonly client: pg.Client;
  private readonly statusIntervalMs: number;
  private connection: ReplicationConnection | null = null;

  private confirmed: Lsn;
  /** The position the server was last told: `confirmed` unless mayAcknowledge held it back. */
  private acknowledged: Lsn;
  private serverWalEnd = 0n;
  private received = 0;
  private receivedByteCount = 0;
  private processed = 0;
  private inTransaction = false;
  /**
   * Messages that arrived while the handler's promise was pending (the rest
   * of the socket's read); the socket is paused meanwhile. Decoded from copies:
   * their values outlive the read, and stop() reads on while they wait, which
   * lets pg's parser reuse the memory of earlier reads.
   */
  private queue: PgoutputMessage<TextBytes>[] = [];
  private queueHead = 0;
  private waiting = false;

  private statusTimer: NodeJS.Timeout | null = null;
  private statusScheduled = false;
  private started = false;
  private stopping = false;
  private failure: unknown = null;
  private settle: ((error: unknown) => void) | null = null;
  private ended: Promise<void> = Promise.resolve();

  constructor(options: SlotReaderOptions) {
    this.options = options;
    this.confirmed = options.startLsn ?? 0n;
    this.acknowledged = this.confirmed;
    this.statusIntervalMs = options.statusIntervalMs ?? 10_000;
    const given: pg.ClientConfig =
      typeof options.connection === "string" ? { connectionString: options.connection } : options.connection;
    // The walsender formats values with its own session settings: pin the ones that change
    // text output, so captured values do not depend on the source's or the role's defaults.
    const clientConfig = withValueFormat(withApplicationName(given, options.applicationName));
    // A walsender connection ("replication" is a startup parameter pg passes on but does not type).
    this.client = new pg.Client({ ...clientConfig, replication: "database" } as pg.ClientConfig);
    this.client.on("error", (error: Error) => this.fail(error));
  }

  /** The highest position acknowledged to PostgreSQL as durable. */
  get confirmedLsn(): Lsn {
    return this.acknowledged;
  }

  /** Bytes of pgoutput messages this reader has received. */
  get receivedBytes(): number {
    return this.receivedByteCount;
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
    const ended = new Promise<void>((resolve, reject) => {
      this.settle = (error) => {
        this.settle = null;
        if (this.statusTimer) clearInterval(this.statusTimer);
        this.statusTimer = null;
        closeQuietly(this.client.end()).then(() => (error === null ? resolve() : reject(error)));
      };
      this.stream().then(
        () => {
          if (!this.stopping) this.fail(new Error("the source ended the replication stream"));
          else this.finish();
        },
        (error: unknown) => {
          if (this.stopping && /Connection\s+terminated/i.test(String(error))) this.finish();
          else this.fail(error);
        },
      );
    });
    // stop() waits for the end, not for its outcome: the failure goes to start()'s caller.
    this.ended = ended.catch(() => undefined);
    return ended;
  }

  /**
   * Sends a last status update and closes the connection once it is written,
   * so that the server reads it before the end of the stream; start() then
   * resolves.
   */
  async stop(): Promise<void> {
    if (!this.stopping) {
      this.stopping = true;
      this.sendStatus();
      if (this.connection === null) {
        this.finish();
      } else {
        this.connection.stream.end();
        // Read on, so that the server's end of the stream is seen even while the capture was
        // waiting for Kafka; what arrives meanwhile is dropped, like everything unconfirmed.
        this.connection.stream.resume();
        // The server closes its side on our end of stream; a server that does not is cut off.
        setTimeout(() => this.finish(), STOP_GRACE_MS).unref();
      }
    }
    await this.ended;
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
    // Coalesces confirms (one per transaction of a Kafka batch, one batch per produce round trip)
    // into one status message: each is a write here and a wake-up of the walsender.
    if (this.statusScheduled) return;
    this.statusScheduled = true;
    const send = () => {
      this.statusScheduled = false;
      this.sendStatus();
    };
    const delayMs = this.options.statusDelayMs();
    if (delayMs === 0) setImmediate(send);
    else setTimeout(send, delayMs);
  }

  /** Settles when the server ends the stream (or the connection closes). */
  private async stream(): Promise<void> {
    await this.client.connect();
    await requireUtf8Source(this.client);
    if (this.settle === null) return;
    const connection = (this.client as unknown as { connection: ReplicationConnection }).connection;
    this.connection = connection;
    connection.once("replicationStart", () => {
      this.options.logger?.info(
        { slot: this.options.slotName, startLsn: formatLsn(this.confirmed) },
        "logical replication started",
      );
      this.sendStatus();
      this.statusTimer = setInterval(() => this.sendStatus(), this.statusIntervalMs);
    });
    connection.on("copyData", ({ chunk }) => this.receive(chunk));
    await this.client.query(
      startReplicationCommand(this.options.slotName, formatLsn(this.confirmed), [
        this.options.publicationName,
      ]),
    );
  }

  private receive(chunk: Buffer): void {
    if (this.failure !== null || this.settle === null || this.stopping) return;
    if (chunk[0] === XLOG_DATA) {
      this.receivedByteCount += chunk.length - XLOG_DATA_HEADER_BYTES;
      let message: PgoutputMessage<TextBytes>;
      try {
        // Decoded in place, after the XLogData header, with no view of the payload per message.
        message = decodePgoutputBytes(
          this.waiting ? Buffer.from(chunk) : chunk,
          this.options.maxValueBytes,
          XLOG_DATA_HEADER_BYTES,
        );
      } catch (error) {
        this.fail(error);
        return;
      }
      this.received++;
      if (this.waiting) this.queue.push(message);
      else this.deliver(message);
    } else if (chunk[0] === PRIMARY_KEEPALIVE) {
      this.handleKeepalive(chunk.readBigUInt64BE(1), chunk[17] === 1);
    } else {
      this.fail(new Error(`the source sent an unknown replication message type 0x${chunk[0]?.toString(16)}`));
    }
  }

  /** Hands one message over; false when its handler is still working on it (the stream is paused). */
  private deliver(message: PgoutputMessage<TextBytes>): boolean {
    let pending: Promise<void> | undefined;
    try {
      pending = this.options.onMessage(message);
    } catch (error) {
      this.fail(error);
      return false;
    }
    if (pending === undefined) {
      this.handled(message);
      return true;
    }
    this.waiting = true;
    this.connection?.stream.pause();
    pending.then(
      () => {
        if (this.failure !== null) return;
        this.handled(message);
        this.drainQueue();
      },
      (error: unknown) => this.fail(error),
    );
    return false;
  }

  private drainQueue(): void {
    while (this.queueHead < this.queue.length) {
      const message = this.queue[this.queueHead] as PgoutputMessage<TextBytes>;
      this.queueHead++;
      if (!this.deliver(message)) return;
    }
    this.queue = [];
    this.queueHead = 0;
    this.waiting = false;
    this.connection?.stream.resume();
  }

  private handled(message: PgoutputMessage<TextBytes>): void {
    if (message.tag === "begin") this.inTransaction = true;
    else if (message.tag === "commit") this.inTransaction = false;
    this.processed++;
  }

  private handleKeepalive(walEnd: Lsn, shouldRespond: boolean): void {
    if (walEnd > this.serverWalEnd) this.serverWalEnd = walEnd;
    // Keepalives are read as they arrive, ahead of queued data. Only when every message
    // received so far has been handled, no transaction is half delivered and the pipeline
    // holds nothing undurable does nothing before walEnd still need the slot; confirming
    // it then keeps an idle slot (or one whose tables are quiet) from pinning WAL.
    const advanced =
      walEnd > this.confirmed &&
      !this.inTransaction &&
      this.failure === null &&
      this.received === this.processed &&
      this.options.isIdle();
    if (advanced) this.confirmed = walEnd;
    if (shouldRespond || advanced) this.sendStatus();
  }

  /** Standby status update ('r'): written, flushed and applied are all the durable position. */
  private sendStatus(): void {
    const connection = this.connection;
    if (connection === null || this.settle === null) return;
    // Checked in the same synchronous step as the write below: nothing runs between them.
    if (this.options.mayAcknowledge?.() !== false) this.acknowledged = this.confirmed;
    const position = this.acknowledged;
    const message = Buffer.allocUnsafe(34);
    message[0] = 0x72; // 'r'
    message.writeBigUInt64BE(position, 1); // written
    message.writeBigUInt64BE(position, 9); // flushed
    message.writeBigUInt64BE(position, 17); // applied
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
