// Scenario 6: one large INSERT transaction, from its commit on the primary to visible on the standby,
// against native streaming it while it runs: `streaming = on` up to PostgreSQL 15 (the subscriber
// spools the changes as they arrive and applies them at commit), `parallel` from 16 on (a parallel
// apply worker applies them as they arrive, so the commit itself has little left to do).
import { join } from "node:path";
import {
  accountsDdl,
  accountsInsert,
  type BenchContext,
  type PerSystem,
  Run,
  type SystemName,
  sql,
} from "../context.js";
import { nativeStreamingMode } from "../native-subscription.js";

const TABLE = "bench_large_visible";

export interface LargeVisibleSystemResult {
  /** Commit of the INSERT on the primary → the marker right after it committed on the standby. */
  commitToVisibleMs: number;
}

export type LargeVisibleResult = PerSystem<
  LargeVisibleSystemResult,
  { rows: number; nativeStreaming: "parallel" | "on" }
>;

export async function largeCommitVisible(
  ctx: BenchContext,
  systems: SystemName[],
): Promise<LargeVisibleResult> {
  const rows = ctx.sizes.largeRows;
  const run = new Run(ctx.stack, "largevis", systems, { streaming: true });
  try {
    await run.open(accountsDdl(TABLE), "", [TABLE], {
      logDir: ctx.logDir,
      profileDir: ctx.profileDir ? join(ctx.profileDir, run.db) : undefined,
    });
    ctx.log(`  large: one INSERT of ${rows} rows, commit → visible (${systems.join(" + ")})`);
    await sql(run.primary, accountsInsert(TABLE, 1, rows));
    const committed = await sql<{ ms: number }>(
      run.primary,
      `SELECT (extract(epoch from pg_xact_commit_timestamp(xmin)) * 1000)::float8 AS ms FROM ${TABLE} LIMIT 1`,
    );
    const commitMs = Number(committed[0]?.ms);
    const done = await run.marker("large-visible", 1_800_000);
    const result: LargeVisibleResult = {
      shared: { rows, nativeStreaming: await nativeStreamingMode(ctx.stack.standby2Server) },
    };
    for (const system of systems) {
      result[system] = { commitToVisibleMs: (done.standbyCommitMs[system] as number) - commitMs };
    }
    return result;
  } finally {
    await run.close();
  }
}
