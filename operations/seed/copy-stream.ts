import { once } from "node:events";
import type pg from "pg";
import { type CopyConnection, CopyInQuery, CopyOutQuery } from "../../src/sql/copy-protocol.js";

/**
 * COPY ... TO STDOUT streamed into COPY ... FROM STDIN between two pg clients.
 * The source's CopyData messages are batched and written to the standby's
 * connection, and the source socket is paused while the standby's socket has a
 * full write buffer, so memory stays bounded by one socket read plus one batch.
 */

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
