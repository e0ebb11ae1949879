import { formatLsn, type Lsn } from "../../src/change/lsn.js";
import { DiffrelayError } from "../../src/errors/diffrelay-error.js";

/**
 * Changes the capture can never publish, found before anything of their
 * transaction is confirmed: the slot stays before the transaction, so nothing
 * after it is lost once the cause is removed and the capture runs again.
 */

/** A value whose text is above the hard limit (docs/wire-format.md, "Large values"). */
export class ValueTooLargeError extends DiffrelayError {
  override name = "ValueTooLargeError";

  constructor(
    where: { table: string; column: string; key: string; commitLsn: Lsn },
    bytes: number,
    limit: number,
  ) {
    super(
      "unpublishable",
      `${where.table}: column ${where.column} of the row with key ${where.key}, in the transaction committed at ` +
        `LSN ${formatLsn(where.commitLsn)}, holds ${bytes} bytes of text, above the capture's limit of ${limit} ` +
        "bytes per value (capture.maxValueBytes; the hard limit is V8's largest string). The slot stays before " +
        "this transaction. Make the value smaller on the source, or leave the table out of the publication and " +
        "copy it another way, then start the capture again",
    );
  }
}

/** A change whose frame stays above the message limit even with every value split out (a huge DDL command). */
export class ChangeTooLargeError extends DiffrelayError {
  override name = "ChangeTooLargeError";

  constructor(what: string, commitLsn: Lsn, bytes: number, limit: number) {
    super(
      "unpublishable",
      `${what} in the transaction committed at LSN ${formatLsn(commitLsn)} takes ${bytes} bytes, and only ` +
        `values can be split across messages: it does not fit the topic's message limit of ${limit} bytes. ` +
        "The slot stays before this transaction. Raise max.message.bytes on the data topic, then start the capture again",
    );
  }
}
