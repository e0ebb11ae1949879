// Scenario 3 (part): what REPLICA IDENTITY FULL (the capture's, for exact diffs) costs the primary.
// The same single-row UPDATE workload on a scratch table, first with DEFAULT identity, then FULL;
// nothing replicates from it. Per pass: the WAL written, pgbench's own commit rate, and the CPU a
// backend spends decoding those updates with pgoutput (what a walsender spends for a subscriber,
// without the network), read from /proc for that backend: issue 25's question of an identity mode
// that sends the new row without the old one.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import {
  createMeasuringSlot,
  currentWalLsnText,
  dropSlot,
  pgoutputBytes,
  walBytesBetween,
} from "../../scripts/measure/bandwidth.js";
import { runPgbench } from "../../scripts/measure/pgbench.js";
import { accountsDdl, accountsInsert, type BenchContext, Run, sql } from "../context.js";
import { cpuSeconds } from "../resources.js";

const TABLE = "bench_scratch";
const SLOT = "bench_identity";
const PUBLICATION = "bench_identity";

/** One pass of the workload under one replica identity. */
export interface IdentityPass {
  walPerUpdate: number;
  /** pgbench's commit rate on the primary, nothing replicating. */
  primaryTps: number;
  /** pgoutput's bytes per update, as a subscriber would receive them. */
  pgoutputPerUpdate: number;
  /** CPU seconds per 1,000 updates of the backend decoding them with pgoutput. */
  decodeCpuPer1k: number;
}

export interface IdentityWalResult {
  updates: number;
  default: IdentityPass;
  full: IdentityPass;
}

export async function identityWal(ctx: BenchContext): Promise<IdentityWalResult> {
  const rows = ctx.sizes.smallRows;
  const run = new Run(ctx.stack, "identity", []);
  try {
    await run.open(accountsDdl(TABLE), accountsInsert(TABLE, 1, rows), [TABLE], { logDir: ctx.logDir });
    const dir = mkdtempSync(join(tmpdir(), "diffrelay-bench-"));
    const script = join(dir, "update.sql");
    writeFileSync(
      script,
      `\\set id random(1, ${rows})\n\\set delta random(-500, 500)\nUPDATE ${TABLE} SET balance = balance + :delta * 0.01 WHERE id = :id;\n`,
    );
    const perClient = Math.max(1, Math.round(ctx.sizes.identityUpdates / 4));
    await sql(run.primary, `CREATE PUBLICATION ${PUBLICATION} FOR TABLE ${TABLE}`);
    const measure = async (): Promise<{ pass: IdentityPass; updates: number }> => {
      const client = new pg.Client(run.primary);
      await client.connect();
      try {
        // A checkpoint first, so neither pass pays for the other's dirty pages.
        await client.query("CHECKPOINT");
        await createMeasuringSlot(client, SLOT);
        const before = await currentWalLsnText(client);
        // The same seed both times: the same rows get the same updates.
        const r = await runPgbench([
          "-n",
          "-c",
          "4",
          "-j",
          "2",
          "-t",
          String(perClient),
          "--random-seed",
          "44",
          "-f",
          script,
          run.primary,
        ]);
        const after = await currentWalLsnText(client);
        const wal = await walBytesBetween(client, before, after);
        const [backend] = (await client.query<{ pid: number }>("SELECT pg_backend_pid() AS pid")).rows;
        const cpuBefore = cpuSeconds(backend?.pid as number);
        const pgoutput = await pgoutputBytes(client, SLOT, PUBLICATION);
        const decodeCpu = cpuSeconds(backend?.pid as number) - cpuBefore;
        await dropSlot(client, SLOT);
        const updates = r.transactions;
        return {
          updates,
          pass: {
            walPerUpdate: wal / updates,
            primaryTps: r.tps,
            pgoutputPerUpdate: pgoutput / updates,
            decodeCpuPer1k: (decodeCpu / updates) * 1000,
          },
        };
      } finally {
        await client.end();
      }
    };
    ctx.log(`  identity: ${perClient * 4} updates with DEFAULT, then FULL replica identity`);
    const dflt = await measure();
    await sql(run.primary, `ALTER TABLE ${TABLE} REPLICA IDENTITY FULL`);
    const full = await measure();
    return { updates: dflt.updates, default: dflt.pass, full: full.pass };
  } finally {
    await run.close();
  }
}
