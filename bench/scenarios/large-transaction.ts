// Scenario 4 (part): peak memory of capture and apply on one 1M-row INSERT transaction. diffrelay
// only: the targets are about its processes, and native's run would add minutes for no figure.
import { join } from "node:path";
import { accountsDdl, accountsInsert, type BenchContext, dbNowMs, Run, sql } from "../context.js";
import { CpuMeter, peakRssBytes } from "../resources.js";

const TABLE = "bench_large";

export interface LargeResult {
  rows: number;
  rowsPerSecond: number;
  capturePeakRssBytes: number;
  applyPeakRssBytes: number;
  cpuSeconds: Record<string, number>;
}

export async function largeTransaction(ctx: BenchContext): Promise<LargeResult> {
  const rows = ctx.sizes.largeRows;
  const run = new Run(ctx.stack, "large", ["diffrelay"]);
  try {
    await run.open(accountsDdl(TABLE), "", [TABLE], {
      logDir: ctx.logDir,
      profileDir: ctx.profileDir ? join(ctx.profileDir, run.db) : undefined,
    });
    const capture = run.diffrelay?.capture?.child.pid as number;
    const apply = run.diffrelay?.apply?.child.pid as number;
    const cpu = new CpuMeter({ "diffrelay capture": capture, "diffrelay apply": apply });
    cpu.start();
    ctx.log(`  large: one INSERT of ${rows} rows`);
    const startMs = await dbNowMs(run.primary);
    await sql(run.primary, accountsInsert(TABLE, 1, rows));
    const done = await run.marker("large", 900_000);
    return {
      rows,
      rowsPerSecond: rows / (((done.standbyCommitMs.diffrelay as number) - startMs) / 1000),
      capturePeakRssBytes: peakRssBytes(capture),
      applyPeakRssBytes: peakRssBytes(apply),
      cpuSeconds: cpu.stop(),
    };
  } finally {
    await run.close();
  }
}
