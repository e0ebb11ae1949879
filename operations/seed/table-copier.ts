import pg from "pg";
import { closeQuietly } from "../../src/errors/close-quietly.js";
import { quoteIdent } from "../../src/sql/quote.js";
import { pipeCopy } from "./copy-stream.js";
import type { PublishedTable } from "./published-tables.js";
import type { SeedProgress } from "./seed-progress.js";
import { importSnapshot } from "./snapshot-slot.js";

/** One unit of copy work: a whole table, or one ctid block range of a large table. */
export interface CopyItem {
  table: PublishedTable;
  /** The standby's relkind: TRUNCATE ONLY for plain tables (their inheritance children are published separately). */
  standbyRelkind: string;
  /** Block range [fromBlock, toBlock); toBlock null means "to the end". Null range: the whole table. */
  range: { fromBlock: number; toBlock: number | null } | null;
  binary: boolean;
  /** Truncate the standby table in the copy's own transaction (whole-table items only). */
  truncate: boolean;
}

export interface CopyPlanOptions {
  /** Tables estimated above this many rows are split into ctid ranges of about this size. */
  rangeRows: number;
}

/**
 * Splits large plain tables into ctid block ranges. Every range reads the same
 * exported snapshot, in which each row version has exactly one ctid, so the
 * ranges partition the table's rows exactly: no row is copied twice or missed.
 * The last range is open-ended, so rows in blocks beyond the (estimated) page
 * count are still copied.
 */
export function planRanges(table: PublishedTable, options: CopyPlanOptions): CopyItem["range"][] {
  if (table.relkind !== "r" || table.estimatedRows <= options.rangeRows || table.pages < 2) return [null];
  const n = Math.min(Math.ceil(table.estimatedRows / options.rangeRows), table.pages);
  const ranges: CopyItem["range"][] = [];
  for (let i = 0; i < n; i++) {
    const fromBlock = Math.floor((table.pages * i) / n);
    const toBlock = i === n - 1 ? null : Math.floor((table.pages * (i + 1)) / n);
    ranges.push({ fromBlock, toBlock });
  }
  return ranges;
}

export function copyOutSql(item: CopyItem): string {
  const { table } = item;
  const columns = table.columns.filter((c) => !c.generated).map((c) => quoteIdent(c.name));
  const from = table.relkind === "p" ? table.qualified : `ONLY ${table.qualified}`;
  const where = item.range
    ? ` WHERE ctid >= '(${item.range.fromBlock},0)'::tid${
        item.range.toBlock === null ? "" : ` AND ctid < '(${item.range.toBlock},0)'::tid`
      }`
    : "";
  return `COPY (SELECT ${columns.join(", ")} FROM ${from}${where}) TO STDOUT${item.binary ? " (FORMAT binary)" : ""}`;
}

export function copyInSql(item: CopyItem): string {
  const columns = item.table.columns.filter((c) => !c.generated).map((c) => quoteIdent(c.name));
  return `COPY ${item.table.qualified} (${columns.join(", ")}) FROM STDIN${item.binary ? " (FORMAT binary)" : ""}`;
}

/**
 * Empties a standby table inside the caller's transaction. TRUNCATE refuses a
 * table that another table's foreign key references; DELETE then does the same
 * work, and with session_replication_role = replica no FK trigger fires.
 */
export async function emptyStandbyTable(
  client: pg.Client,
  table: PublishedTable,
  relkind: string,
): Promise<void> {
  await client.query("SAVEPOINT diffrelay_truncate");
  try {
    await client.query(`TRUNCATE ${relkind === "r" ? "ONLY " : ""}${table.qualified}`);
  } catch (err) {
    if ((err as { code?: string }).code !== "0A000") throw err;
    await client.query("ROLLBACK TO SAVEPOINT diffrelay_truncate");
    await client.query(`DELETE FROM ${relkind === "r" ? "ONLY " : ""}${table.qualified}`);
  }
  await client.query("RELEASE SAVEPOINT diffrelay_truncate");
}

export interface CopyRunOptions {
  sourceConfig: pg.ClientConfig;
  standbyConfig: pg.ClientConfig;
  snapshotName: string;
  parallel: number;
  progress: SeedProgress;
}

/** Standby sessions write like the applier: no triggers, no FK checks (the source already checked). */
export async function openStandbySession(config: pg.ClientConfig): Promise<pg.Client> {
  const client = new pg.Client(config);
  client.on("error", () => undefined);
  await client.connect();
  await client.query("SET session_replication_role = replica");
  return client;
}

async function openSourceSession(config: pg.ClientConfig): Promise<pg.Client> {
  const client = new pg.Client(config);
  client.on("error", () => undefined);
  await client.connect();
  return client;
}

/**
 * Copies the items with `parallel` workers, each with one source and one
 * standby connection. Each item is one source transaction that imports the
 * exported snapshot and one standby transaction; the first failure stops the
 * other workers after their current item and is rethrown.
 */
export async function copyItems(items: CopyItem[], options: CopyRunOptions): Promise<void> {
  const queue = [...items];
  let failure: unknown = null;
  const worker = async () => {
    const source = await openSourceSession(options.sourceConfig);
    const standby = await openStandbySession(options.standbyConfig);
    try {
      for (;;) {
        if (failure) return;
        const item = queue.shift();
        if (!item) return;
        await copyItem(item, source, standby, options);
      }
    } catch (err) {
      failure ??= err;
    } finally {
      await closeQuietly(source.end());
      await closeQuietly(standby.end());
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(options.parallel, items.length)) }, worker));
  if (failure) throw failure;
}

async function copyItem(
  item: CopyItem,
  source: pg.Client,
  standby: pg.Client,
  options: CopyRunOptions,
): Promise<void> {
  const name = `${item.table.schema}.${item.table.name}`;
  const { progress } = options;
  progress.started(name);
  await importSnapshot(source, options.snapshotName);
  await standby.query("BEGIN");
  try {
    if (item.truncate) await emptyStandbyTable(standby, item.table, item.standbyRelkind);
    let lastMessages = 0;
    let lastBytes = 0;
    // Binary COPY sends a header and a trailer message besides the rows; the final count comes from the server.
    const rows = await pipeCopy(source, copyOutSql(item), standby, copyInSql(item), (p) => {
      progress.advanced(name, p.messages - lastMessages, p.bytes - lastBytes);
      lastMessages = p.messages;
      lastBytes = p.bytes;
    });
    progress.advanced(name, rows - lastMessages, 0);
    await standby.query("COMMIT");
    await source.query("COMMIT");
  } catch (err) {
    await standby.query("ROLLBACK").catch(() => undefined);
    await source.query("ROLLBACK").catch(() => undefined);
    throw new Error(
      `copying ${name}${item.range ? ` (blocks from ${item.range.fromBlock})` : ""} failed: ${(err as Error).message}`,
      {
        cause: err,
      },
    );
  }
  progress.rangeFinished(name);
}
