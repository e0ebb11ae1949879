// Scenario 3 (part): the extra WAL REPLICA IDENTITY FULL writes. The same single-row UPDATE workload
// on a scratch table, first with DEFAULT identity, then FULL; nothing replicates from it.
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { currentWalLsnText, walBytesBetween } from "../../scripts/measure/bandwidth.js";
import { runPgbench } from "../../scripts/measure/pgbench.js";
import { accountsDdl, accountsInsert, type BenchContext, Run, sql } from "../context.js";

const TABLE = "bench_scratch";

export interface IdentityWalResult {
  updates: number;
  walPerUpdateDefault: number;
  walPerUpdateFull: number;
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
    const measure = async (): Promise<{ wal: number; updates: number }> => {
      const client = new pg.Client(run.primary);
      await client.connect();
      try {
        // A checkpoint first, so neither pass pays for the other's dirty pages.
        await client.query("CHECKPOINT");
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
        return { wal: await walBytesBetween(client, before, after), updates: r.transactions };
      } finally {
        await client.end();
      }
    };
    ctx.log(`  identity: ${perClient * 4} updates with DEFAULT, then FULL replica identity`);
    const dflt = await measure();
    await sql(run.primary, `ALTER TABLE ${TABLE} REPLICA IDENTITY FULL`);
    const full = await measure();
    return {
      updates: dflt.updates,
      walPerUpdateDefault: dflt.wal / dflt.updates,
      walPerUpdateFull: full.wal / full.updates,
    };
  } finally {
    await run.close();
  }
}
