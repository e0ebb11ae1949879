/**
 * A PostgreSQL log sequence number, held as a 64-bit unsigned integer.
 * LSNs are compared as numbers, never as strings: the same position is written
 * both unpadded ("0/163B1A8") and padded ("00000000/0163B1A8").
 */
export type Lsn = bigint;

const LSN_TEXT = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/;

export function parseLsn(text: string): Lsn {
  // Halves parsed as numbers (each fits in 32 bits) cost far less than BigInt from hex strings.
  const match = LSN_TEXT.exec(text.trim());
  if (!match) throw new Error(`not an LSN: ${JSON.stringify(text)} (expected hex "X/Y")`);
  return (
    (BigInt(Number.parseInt(match[1] as string, 16)) << 32n) | BigInt(Number.parseInt(match[2] as string, 16))
  );
}

/** PostgreSQL's own text form: upper-case hex, unpadded halves. */
export function formatLsn(lsn: Lsn): string {
  const high = lsn >> 32n;
  const low = lsn & 0xffffffffn;
  return `${high.toString(16).toUpperCase()}/${low.toString(16).toUpperCase()}`;
}

export function maxLsn(a: Lsn, b: Lsn): Lsn {
  return a > b ? a : b;
}
