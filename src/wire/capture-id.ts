/**
 * The capture id of a data message (docs/wire-format.md, "Data messages"):
 * which capture start wrote it, ordered so that a later start has a greater id
 * whatever the capture host's clock says. Bit 63 set, the source epoch in bits
 * 32–62, and below it the number of the start, which the source's database
 * hands out (a sequence, bumped at every capture start). Ids written before
 * this layout hold a start time in milliseconds shifted left by 16 bits, below
 * 2^63 until the year 6429: every counted id is greater than every one of
 * them, so one u64 comparison orders both kinds, and appliers that knew only
 * the clock-based ids order the new ones too.
 */

const COUNTED = 1n << 63n;
const MAX_EPOCH = 2 ** 31 - 1;
const MAX_START = 2 ** 32 - 1;

export function countedCaptureId(epoch: number, start: bigint): bigint {
  if (!Number.isSafeInteger(epoch) || epoch < 0 || epoch > MAX_EPOCH) {
    throw new RangeError(`epoch ${epoch} does not fit a capture id (0 to ${MAX_EPOCH})`);
  }
  if (start < 1n || start > BigInt(MAX_START)) {
    throw new RangeError(
      `capture start number ${start} does not fit a capture id (1 to ${MAX_START}): the source's diffrelay.capture_start sequence is out of range`,
    );
  }
  return COUNTED | (BigInt(epoch) << 32n) | start;
}

/** What a capture id says about the start that wrote it, for messages that name it. */
export function describeCaptureId(id: bigint): string {
  if ((id & COUNTED) === 0n) return `started at ${new Date(Number(id >> 16n)).toISOString()} by its clock`;
  return `epoch ${(id >> 32n) & BigInt(MAX_EPOCH)}, start ${id & BigInt(MAX_START)}`;
}
