// Scenario 2: one transaction each of a 200k-row INSERT, an UPDATE of one column on every row and a
// DELETE of every row. Rows/s end to end, bytes per row change, CPU per 1k changes and peak RSS.
import { join } from "node:path";
import { BytesMeter, type PhaseBytes } from "../bytes-meter.js";
import {
  ACCOUNT_COLUMNS,
  accountsDdl,
  accountsInsert,
  type BenchContext,
  dbNowMs,
  type PerSystem,
  Run,
  type SystemName,
  sql,
  textBytesPerRow,
} from "../context.js";
import { CpuMeter, peakRssBytes } from "../resources.js";

const TABLE = "bench_bulk";
export const BULK_STEPS = ["insert", "update", "delete"] as const;
export type BulkStep = (typeof BULK_STEPS)[number];

export interface BulkSystemResult {
  rowsPerSecond: Record<BulkStep, number>;
  cpuSeconds: Record<string, number>;
  /** Peak RSS (VmHWM) of diffrelay's processes over the run; absent for native. */
  peakRssBytes?: { capture: number; apply: number };
}

export interface BulkShared {
  rows: number;
  /** Statement start → commit on the primary alone, per step. */
  sourceSeconds: Record<BulkStep, number>;
  bytes: Record<BulkStep, PhaseBytes>;
  floorBytes: Record<BulkStep, number>;
}

export type BulkResult = PerSystem<BulkSystemResult, BulkShared>;

function statement(step: BulkStep, rows: number): string {
  if (step === "insert") return accountsInsert(TABLE, 1, rows);
  if (step === "update") return `UPDATE ${TABLE} SET balance = balance + 1`;
  return `DELETE FROM ${TABLE}`;
}

export async function bulk(
  ctx: BenchContext,
  systems: SystemName[],
  rows = ctx.sizes.bulkRows,
): Promise<BulkResult> {
  const run = new Run(ctx.stack, "bulk", systems);
  try {
    await run.open(accountsDdl(TABLE), "", [TABLE], {
      logDir: ctx.logDir,
      profileDir: ctx.profileDir ? join(ctx.profileDir, run.db) : undefined,
    });
    const cpu = new CpuMeter({
      "diffrelay capture": run.diffrelay?.capture?.child.pid,
      "diffrelay apply": run.diffrelay?.apply?.child.pid,
      "diffrelay walsender": await run.diffrelay?.walsenderPid(),
      "Kafka broker": run.diffrelay ? ctx.stack.kafkaPid : undefined,
      "native walsender": await run.native?.walsenderPid(),
      "native apply worker": await run.native?.applyWorkerPid(),
    });
    cpu.start();
    const shared: BulkShared = {
      rows,
      sourceSeconds: { insert: 0, update: 0, delete: 0 },
      bytes: {} as Record<BulkStep, PhaseBytes>,
      floorBytes: { insert: 0, update: 0, delete: 0 },
    };
    const rates: Record<SystemName, Record<BulkStep, number>> = {
      diffrelay: { insert: 0, update: 0, delete: 0 },
      native: { insert: 0, update: 0, delete: 0 },
    };
    for (const step of BULK_STEPS) {
      ctx.log(`  bulk: ${step} of ${rows} rows in one transaction (${systems.join(" + ")})`);
      // The floor is the text of what must cross: every column for an insert, key + new value for the
      // update, the key for a delete. Measured on the rows as they are before the delete removes them.
      if (step === "update")
        shared.floorBytes.update = await textBytesPerRow(run.primary, TABLE, ["id", "balance"]);
      if (step === "delete") shared.floorBytes.delete = await textBytesPerRow(run.primary, TABLE, ["id"]);
      const bytes = new BytesMeter(run, TABLE);
      await bytes.start();
      const startMs = await dbNowMs(run.primary);
      await sql(run.primary, statement(step, rows));
      const done = await run.marker(`bulk-${step}`, 600_000);
      shared.sourceSeconds[step] = (done.primaryCommitMs - startMs) / 1000;
      for (const system of systems) {
        rates[system][step] = rows / (((done.standbyCommitMs[system] as number) - startMs) / 1000);
      }
      shared.bytes[step] = await bytes.stop();
      if (step === "insert")
        shared.floorBytes.insert = await textBytesPerRow(run.primary, TABLE, ACCOUNT_COLUMNS);
    }
    const used = cpu.stop();
    const result: BulkResult = { shared };
    for (const system of systems) {
      const prefix = system === "diffrelay" ? "diffrelay " : "native ";
      result[system] = {
        rowsPerSecond: rates[system],
        cpuSeconds: Object.fromEntries(
          Object.entries(used).filter(
            ([n]) => n.startsWith(prefix) || (system === "diffrelay" && n === "Kafka broker"),
          ),
        ),
      };
    }
    if (result.diffrelay && run.diffrelay?.capture?.child.pid && run.diffrelay.apply?.child.pid) {
      result.diffrelay.peakRssBytes = {
        capture: peakRssBytes(run.diffrelay.capture.child.pid),
        apply: peakRssBytes(run.diffrelay.apply.child.pid),
      };
    }
    return result;
  } finally {
    await run.close();
  }
}
