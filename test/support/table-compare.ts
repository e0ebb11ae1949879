import type pg from "pg";
import { VALUE_FORMAT_SETTINGS } from "../../src/sql/value-format.js";
import { withClient } from "./services.js";

/** One table compared between the source and a standby, as multisets of `row::text`. */
export interface TableComparison {
  table: string;
  sourceRows: number;
  standbyRows: number;
  equal: boolean;
  /** Rows (with how many more copies) that the source has and the standby lacks. */
  onlyOnSource: RowCount[];
  /** Rows (with how many more copies) that the standby has and the source lacks. */
  onlyOnStandby: RowCount[];
}

export interface RowCount {
  row: string;
  count: number;
}

/** An alias no fixture uses as a column name, so `alias::text` is the whole row. */
const ROW_ALIAS = "diffrelay_compare_row";

async function readMultiset(
  url: string,
  tables: readonly string[],
): Promise<Map<string, Map<string, number>>> {
  return withClient(url, async (client: pg.Client) => {
    // Both sides render values identically whatever the servers' defaults are.
    for (const [name, value] of VALUE_FORMAT_SETTINGS) {
      await client.query("SELECT pg_catalog.set_config($1, $2, false)", [name, value]);
    }
    // One snapshot for all tables: the comparison sees a single state of this database.
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    try {
      const result = new Map<string, Map<string, number>>();
      for (const table of tables) {
        const { rows } = await client.query<{ r: string; n: string }>(
          `SELECT ${ROW_ALIAS}::text AS r, count(*)::text AS n FROM ${table} ${ROW_ALIAS} GROUP BY 1`,
        );
        result.set(table, new Map(rows.map((row) => [row.r, Number(row.n)])));
      }
      return result;
    } finally {
      await client.query("COMMIT");
    }
  });
}

function total(rows: Map<string, number>): number {
  let n = 0;
  for (const c of rows.values()) n += c;
  return n;
}

/** What `a` has more of than `b`, sorted for stable output. */
function surplus(a: Map<string, number>, b: Map<string, number>): RowCount[] {
  const out: RowCount[] = [];
  for (const [row, count] of a) {
    const extra = count - (b.get(row) ?? 0);
    if (extra > 0) out.push({ row, count: extra });
  }
  return out.sort((x, y) => (x.row < y.row ? -1 : x.row > y.row ? 1 : 0));
}

/**
 * Compares `tables` (SQL names, already quoted where needed, e.g. `"Odd Schema"."T"`) between two
 * databases row by row: counts, and an order-independent comparison of `row::text` where duplicate
 * rows count (a PK-less table with an insert applied twice shows up).
 */
export async function compareTables(
  sourceUrl: string,
  standbyUrl: string,
  tables: readonly string[],
): Promise<TableComparison[]> {
  const [source, standby] = await Promise.all([
    readMultiset(sourceUrl, tables),
    readMultiset(standbyUrl, tables),
  ]);
  return tables.map((table) => {
    const s = source.get(table) ?? new Map<string, number>();
    const t = standby.get(table) ?? new Map<string, number>();
    const onlyOnSource = surplus(s, t);
    const onlyOnStandby = surplus(t, s);
    return {
      table,
      sourceRows: total(s),
      standbyRows: total(t),
      equal: onlyOnSource.length === 0 && onlyOnStandby.length === 0,
      onlyOnSource,
      onlyOnStandby,
    };
  });
}

const clip = (row: string) => (row.length > 300 ? `${row.slice(0, 300)}… (${row.length} chars)` : row);

/**
 * Readable differences, one string per differing table; empty when every table is equal, so a test
 * can assert `expect(describeDifferences(c)).toEqual([])` and see the rows when it fails.
 */
export function describeDifferences(comparisons: readonly TableComparison[], maxRows = 10): string[] {
  return comparisons
    .filter((c) => !c.equal)
    .map((c) => {
      const lines = [`${c.table}: source ${c.sourceRows} rows, standby ${c.standbyRows} rows`];
      const list = (label: string, rows: RowCount[]) => {
        if (rows.length === 0) return;
        lines.push(`  ${label} (${rows.length} distinct):`);
        for (const r of rows.slice(0, maxRows)) lines.push(`    ${r.count} × ${clip(r.row)}`);
        if (rows.length > maxRows) lines.push(`    … ${rows.length - maxRows} more`);
      };
      list("only on source", c.onlyOnSource);
      list("only on standby", c.onlyOnStandby);
      return lines.join("\n");
    });
}
