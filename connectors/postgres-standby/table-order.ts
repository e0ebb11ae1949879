import type { ApplyChange } from "../../src/change/change-model.js";

/**
 * Reorders a group of changes so that each table's changes stand together,
 * keeping their order within the table. Interleaved small transactions
 * (UPDATE a, INSERT b, UPDATE a, …) then batch into one statement per table
 * instead of one statement per change.
 *
 * This is exact on a standby applying with session_replication_role =
 * replica: no trigger or foreign-key check runs, and every remaining
 * constraint (unique, exclusion, check) concerns one table, so changes to
 * different tables commute within the standby transaction. TRUNCATE, DDL and
 * sequence changes may concern several tables at once: they are barriers that
 * nothing moves across.
 *
 * Returns the new order as indexes into `changes`.
 */
export function orderByTable(changes: readonly ApplyChange[]): number[] {
  const order: number[] = [];
  let segment = new Map<number, number[]>();
  const flush = () => {
    for (const indexes of segment.values()) order.push(...indexes);
    segment = new Map();
  };
  changes.forEach((change, index) => {
    if (change.kind === "insert" || change.kind === "update" || change.kind === "delete") {
      const id = change.relation.relationId;
      const list = segment.get(id);
      if (list) list.push(index);
      else segment.set(id, [index]);
    } else {
      flush();
      order.push(index);
    }
  });
  flush();
  return order;
}
