import { once } from "node:events";
import type pg from "pg";

/**
 * COPY ... TO STDOUT streamed into COPY ... FROM STDIN between two pg clients.
 *
 * pg has no COPY API of its own, but client.query() accepts any "submittable"
 * object and hands it the protocol messages of its query (this is how the
 * pg-copy-streams package works). Two small submittables are enough here, so
 * diffrelay needs no extra dependency: the source's CopyData messages are
 * batched and written to the standby's connection, and the source socket is
 * paused while the standby's socket has a full write buffer, so memory stays
 * bounded by one socket read plus one batch.
 */

/** The internal pg Connection methods the COPY sub-protocol needs (present in pg 8). */
interface CopyConnection extends pg.Connection {
  sendCopyFromChunk(chunk: Buffer): void;
  endCopyFrom(): void;
  sendCopyFail(message: string): void;
}

interface CommandCompleteMessage {
  text: string;
}

function copiedRows(message: CommandCompleteMessage): number {
  const match = /^COPY (\d+)/.exec(message.text);
  return match ? Number(match[1]) : 0;
}

/** Base of both submittables: settles once, on ReadyForQuery (or an error). */
abstract class CopyQuery {
  rows = 0;
  private error: Error | null = null;
  private settle!: { resolve: (rows: number) => void; reject: (err: Error) => void };
  readonly done: Promise<number>;

  constructor(readonly text: string) {
    this.done = new Promise<number>((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    // Callers await `done` later; a failure before then must not count as unhandled.
    this.done.catch(() => undefined);
  }

  submit(connection: pg.Connection): void {
    connection.query(this.text);
  }

  handleCommandComplete(message: CommandCompleteMessage): void {
    this.rows = copiedRows(message);
  }

  handleReadyForQuery(): void {
    if (this.error) this.settle.reject(this.error);
    else this.settle.resolve(this.rows);
  }

  handleError(err: Error): void {
    // A server error is followed by ReadyForQuery; a dead socket is not, so settle now either way.
    this.error = err;
    this.settle.reject(err);
  }

  handleCopyInResponse(connection: CopyConnection): void {
    connection.sendCopyFail("diffrelay did not expect COPY FROM STDIN here");
  }

  handleCopyData(_message: { chunk: Buffer }): void {}
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
}

class CopyOutQuery extends CopyQuery {
  constructor(
    text: string,
    private readonly onData: (chunk: Buffer) => void,
  ) {
    super(text);
  }

  override handleCopyData(message: { chunk: Buffer }): void {
    this.onData(message.chunk);
  }
}

class CopyInQuery extends CopyQuery {
  connection: CopyConnection | null = null;
  private readyResolve!: () => void;
  readonly ready = new Promise<void>((resolve) => {
    this.readyResolve = resolve;
  });

  override submit(connection: pg.Connection): void {
    this.connection = connection as CopyConnection;
    super.submit(connection);
  }

  override handleCopyInResponse(): void {
    this.readyResolve();
  }
}

export interface CopyProgress {
  /** Bytes of COPY data moved so far. */
  bytes: number;
  /** CopyData messages so far: one per row (binary COPY adds a header and a trailer message). */
  messages: number;
}

const BATCH_BYTES = 256 * 1024;

/**
 * Streams `copyOutSql` on `source` into `copyInSql` on `target`; both clients
 * must already be inside the transactions the caller wants. Resolves with the
 * row count the target reports.
 */
export async function pipeCopy(
  source: pg.Client,
  copyOutSql: string,
  target: pg.Client,
  copyInSql: string,
  onProgress: (progress: CopyProgress) => void = () => undefined,
): Promise<number> {
  const copyIn = new CopyInQuery(copyInSql);
  void target.query(copyIn as unknown as pg.Submittable);
  await Promise.race([copyIn.ready, copyIn.done]);
  const targetConnection = copyIn.connection as CopyConnection;
  const targetSocket = targetConnection.stream;
  const sourceSocket = source.connection.stream;

  const progress: CopyProgress = { bytes: 0, messages: 0 };
  let batch: Buffer[] = [];
  let batchBytes = 0;
  let paused = false;
  const flush = () => {
    if (batchBytes === 0) return;
    targetConnection.sendCopyFromChunk(batch.length === 1 ? (batch[0] as Buffer) : Buffer.concat(batch));
    batch = [];
    batchBytes = 0;
    if (!paused && targetSocket.writableNeedDrain) {
      paused = true;
      sourceSocket.pause();
      targetSocket.once("drain", () => {
        paused = false;
        sourceSocket.resume();
      });
    }
  };
  const copyOut = new CopyOutQuery(copyOutSql, (chunk) => {
    // The chunk is a view into pg's parse buffer, which the next socket read reuses: keep a copy.
    batch.push(Buffer.from(chunk));
    batchBytes += chunk.length;
    progress.bytes += chunk.length;
    progress.messages += 1;
    if (batchBytes >= BATCH_BYTES) {
      flush();
      onProgress(progress);
    }
  });
  void source.query(copyOut as unknown as pg.Submittable);
  try {
    await copyOut.done;
  } catch (err) {
    if (paused) sourceSocket.resume();
    // The standby's COPY must end too, or its connection stays in the COPY sub-protocol.
    targetConnection.sendCopyFail(`source COPY failed: ${(err as Error).message}`);
    await copyIn.done.catch(() => undefined);
    throw err;
  }
  flush();
  if (targetSocket.writableNeedDrain) await once(targetSocket, "drain");
  targetConnection.endCopyFrom();
  const rows = await copyIn.done;
  onProgress(progress);
  return rows;
}
