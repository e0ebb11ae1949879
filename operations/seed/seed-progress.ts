/**
 * Seed progress: on a TTY one redrawn line per table (rows, bytes, rate, ETA)
 * in plain ANSI; otherwise one JSON line per table start/finish and a periodic
 * summary, for logs and scripts.
 */
export interface TableProgress {
  table: string;
  estimatedRows: number;
  rows: number;
  bytes: number;
  startedAt: number | null;
  finishedAt: number | null;
  /** Ranges copied / in total (large tables are copied in several ranges). */
  rangesDone: number;
  ranges: number;
}

export interface ProgressSink {
  write(text: string): void;
  isTTY: boolean;
}

const REDRAW_MS = 250;
const LOG_MS = 5000;

export class SeedProgress {
  private readonly tables = new Map<string, TableProgress>();
  private drawnLines = 0;
  private lastDraw = 0;
  private lastLog = Date.now();

  constructor(
    private readonly sink: ProgressSink = {
      write: (t) => process.stderr.write(t),
      isTTY: !!process.stderr.isTTY,
    },
  ) {}

  register(table: string, estimatedRows: number, ranges: number): void {
    this.tables.set(table, {
      table,
      estimatedRows,
      rows: 0,
      bytes: 0,
      startedAt: null,
      finishedAt: null,
      rangesDone: 0,
      ranges,
    });
  }

  started(table: string): void {
    const t = this.get(table);
    if (t.startedAt !== null) return;
    t.startedAt = Date.now();
    if (!this.sink.isTTY) this.log({ event: "table started", table, estimatedRows: t.estimatedRows });
    this.render(false);
  }

  /** `rowsDelta` and `bytesDelta` add to the table's totals. */
  advanced(table: string, rowsDelta: number, bytesDelta: number): void {
    const t = this.get(table);
    t.rows += rowsDelta;
    t.bytes += bytesDelta;
    this.render(false);
  }

  rangeFinished(table: string): void {
    const t = this.get(table);
    t.rangesDone += 1;
    if (t.rangesDone === t.ranges) {
      t.finishedAt = Date.now();
      if (!this.sink.isTTY) {
        this.log({
          event: "table copied",
          table,
          rows: t.rows,
          bytes: t.bytes,
          seconds: ((t.finishedAt - (t.startedAt ?? t.finishedAt)) / 1000).toFixed(1),
        });
      }
    }
    this.render(true);
  }

  /** Leaves the last frame on screen and moves below it. */
  finish(): void {
    this.render(true);
  }

  log(fields: Record<string, unknown>): void {
    this.sink.write(`${JSON.stringify({ time: new Date().toISOString(), ...fields })}\n`);
  }

  private get(table: string): TableProgress {
    const t = this.tables.get(table);
    if (!t) throw new Error(`progress for unregistered table ${table}`);
    return t;
  }

  private render(force: boolean): void {
    const now = Date.now();
    if (!this.sink.isTTY) {
      if (now - this.lastLog < LOG_MS) return;
      this.lastLog = now;
      const all = [...this.tables.values()];
      this.log({
        event: "seed progress",
        tablesDone: all.filter((t) => t.finishedAt !== null).length,
        tables: all.length,
        rows: all.reduce((n, t) => n + t.rows, 0),
        bytes: all.reduce((n, t) => n + t.bytes, 0),
      });
      return;
    }
    if (!force && now - this.lastDraw < REDRAW_MS) return;
    this.lastDraw = now;
    const lines = [...this.tables.values()].map((t) => formatLine(t, now));
    // Cursor up over the previous frame, then rewrite each line and clear its rest.
    const up = this.drawnLines > 0 ? `\u001b[${this.drawnLines}A` : "";
    this.sink.write(`${up}${lines.map((l) => `\r${l}\u001b[K\n`).join("")}`);
    this.drawnLines = lines.length;
  }
}

export function formatLine(t: TableProgress, now: number): string {
  const name = t.table.length > 40 ? `${t.table.slice(0, 39)}…` : t.table.padEnd(40);
  if (t.startedAt === null) return `${name} waiting`;
  const end = t.finishedAt ?? now;
  const seconds = Math.max((end - t.startedAt) / 1000, 0.001);
  const rate = t.rows / seconds;
  const rows = `${t.rows.toLocaleString("en-US")} rows`;
  const size = formatBytes(t.bytes);
  if (t.finishedAt !== null) return `${name} done    ${rows}, ${size} in ${seconds.toFixed(1)} s`;
  const remaining = t.estimatedRows > t.rows && rate > 0 ? (t.estimatedRows - t.rows) / rate : null;
  const pct = t.estimatedRows > 0 ? ` ${Math.min(99, Math.floor((100 * t.rows) / t.estimatedRows))}%` : "";
  return `${name} copying${pct} ${rows}, ${size}, ${Math.round(rate).toLocaleString("en-US")} rows/s, ETA ${
    remaining === null ? "?" : `${Math.ceil(remaining)} s`
  }`;
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 * 1024 * 1024) return `${(n / 1024 / 1024).toFixed(1)} MiB`;
  return `${(n / 1024 / 1024 / 1024).toFixed(2)} GiB`;
}
