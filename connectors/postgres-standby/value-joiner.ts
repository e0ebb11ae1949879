import type { ApplyChange, ColumnValue, TransactionChunk } from "../../src/change/change-model.js";

/**
 * Joins values that the capture split into VALUE_PART frames, across the
 * chunks of one source transaction: pieces accumulate until the one marked
 * last, and each completed value fills the next joined slot of a change, in
 * order. Only chunks the grouper applies come here, so a duplicate chunk never
 * adds its pieces twice; a transaction started over starts the joiner over.
 */
export class ValueJoiner {
  private pieces: Buffer[] = [];
  private completed: string[] = [];
  private readonly utf8 = new TextDecoder("utf-8", { fatal: true });

  /** Nothing half-joined or waiting for its change: what a transaction's end must find. */
  get isEmpty(): boolean {
    return this.pieces.length === 0 && this.completed.length === 0;
  }

  reset(): void {
    this.pieces = [];
    this.completed = [];
  }

  /**
   * Puts the chunk's joined values into its changes; returns the bytes it
   * joined, or throws an Error naming what does not add up.
   */
  join(chunk: TransactionChunk<ApplyChange>): number {
    const parts = chunk.valueParts ?? [];
    const slots = chunk.joined ?? [];
    if (parts.length === 0 && slots.length === 0) return 0;
    let bytes = 0;
    let p = 0;
    let s = 0;
    for (let change = 0; change <= chunk.changes.length; change++) {
      for (; p < parts.length && (parts[p]?.beforeChange ?? -1) === change; p++) {
        const part = parts[p] as NonNullable<(typeof parts)[number]>;
        this.pieces.push(part.bytes);
        bytes += part.bytes.length;
        if (part.last) this.complete();
      }
      for (; s < slots.length && (slots[s]?.change ?? -1) === change; s++) {
        const slot = slots[s] as NonNullable<(typeof slots)[number]>;
        const value = this.completed.shift();
        if (value === undefined) {
          throw new Error(
            `change ${change} of the chunk uses a joined value whose last VALUE_PART did not come`,
          );
        }
        const target = chunk.changes[change] as { key?: ColumnValue[]; values?: ColumnValue[] };
        const values = target[slot.field];
        if (values === undefined) throw new Error(`change ${change} of the chunk has no ${slot.field}`);
        values[slot.index] = value;
      }
    }
    return bytes;
  }

  private complete(): void {
    const bytes = Buffer.concat(this.pieces);
    this.pieces = [];
    try {
      this.completed.push(this.utf8.decode(bytes));
    } catch {
      throw new Error(`a value joined from VALUE_PART frames (${bytes.length} bytes) is not valid UTF-8`);
    }
  }
}
