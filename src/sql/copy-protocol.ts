import type pg from "pg";

/**
 * The COPY sub-protocol over a pg client.
 *
 * pg has no COPY API of its own, but client.query() accepts any "submittable"
 * object and hands it the protocol messages of its query (this is how the
 * pg-copy-streams package works). These small submittables are enough for
 * diffrelay (seed streams a table between two clients, the applier writes a
 * run of inserts), so it needs no extra dependency.
 */

/** The internal pg Connection methods the COPY sub-protocol needs (present in pg 8). */
export interface CopyConnection extends pg.Connection {
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

/** Base of the submittables: settles once, on ReadyForQuery (or an error). */
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

/** `COPY … TO STDOUT`: each CopyData message's bytes go to `onData`, a view into pg's parse buffer. */
export class CopyOutQuery extends CopyQuery {
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

/** `COPY … FROM STDIN`: `ready` resolves when the server takes data on `connection`. */
export class CopyInQuery extends CopyQuery {
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

/**
 * Runs `COPY … FROM STDIN` with `data` (whole rows in the statement's format)
 * and resolves with the row count the server reports. A failure (a row the
 * server refuses) rejects with the server's error; the connection is usable
 * again afterwards, inside the same (now failed) transaction or subtransaction.
 */
export async function copyIn(client: pg.ClientBase, sql: string, data: Buffer): Promise<number> {
  const query = new CopyInQuery(sql);
  void client.query(query as unknown as pg.Submittable);
  await Promise.race([query.ready, query.done]);
  const connection = query.connection as CopyConnection;
  connection.sendCopyFromChunk(data);
  connection.endCopyFrom();
  return query.done;
}
