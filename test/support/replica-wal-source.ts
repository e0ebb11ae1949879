import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startPostgres, startStack, stopPostgres, stopStack } from "../../scripts/stack/index.js";
import { runSql } from "./services.js";

/**
 * Runs `body` against a private PostgreSQL whose wal_level is replica: the
 * shared clusters must stay logical for every other test. Removed afterwards.
 */
export async function withReplicaWalSource(body: (url: string) => Promise<void>): Promise<void> {
  const baseDir = mkdtempSync(join(tmpdir(), "diffrelay-stack-wal-"));
  try {
    const up = await startStack({ baseDir, clusters: ["primary"], kafka: false, log: () => undefined });
    const url = up.env.DIFFRELAY_SOURCE_URL as string;
    await runSql(url, "ALTER SYSTEM SET wal_level = replica");
    await stopPostgres("primary", "fast", { baseDir });
    await startPostgres("primary", { baseDir });
    await body(url);
  } finally {
    await stopStack({ baseDir, purge: true });
  }
}
