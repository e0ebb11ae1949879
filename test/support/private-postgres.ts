// A PostgreSQL cluster of one test file's own, for what must not touch the shared servers: a
// server-wide setting (synchronous_standby_names), or a kill -9 of the postmaster.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  clusterPid,
  clusterUrl,
  initCluster,
  startCluster,
  stopCluster,
} from "../../scripts/stack/postgres-cluster.js";
import type { PgClusterState } from "../../scripts/stack/stack-state.js";
import { withClient } from "./services.js";

export interface PrivatePostgres {
  /** The `app` database, as the stack's superuser application role. */
  url: string;
  /** The postmaster's pid now (it changes after a restart). */
  pid(): number;
  /** ALTER SYSTEM for each setting, then a reload. */
  configure(settings: Record<string, string>): Promise<void>;
  /** SIGKILL to the postmaster (by pid), waiting for its backends to go. */
  kill(): Promise<void>;
  /** Starts it again after a kill (crash recovery), as a supervisor would. */
  restart(): Promise<void>;
  /** Stops it and removes its files. */
  destroy(): Promise<void>;
}

/**
 * @param options.password the application role's password instead of a generated one: servers that must
 *   reach each other's databases with one user and password (an HA cluster's rejoin) share it.
 */
export async function startPrivatePostgres(
  name: string,
  options: { password?: string } = {},
): Promise<PrivatePostgres> {
  const baseDir = mkdtempSync(join(tmpdir(), `diffrelay-${name}-`));
  let state: PgClusterState | undefined;
  try {
    state = await initCluster(baseDir, name, "debian", () => undefined);
    // Every start (the first and each restart after a kill) sets the role's password to the state's.
    if (options.password !== undefined) state.password = options.password;
    await startCluster(state);
  } catch (err) {
    if (state) await stopCluster(state, "immediate").catch(() => undefined);
    rmSync(baseDir, { recursive: true, force: true });
    throw err;
  }
  const cluster = state;
  const url = clusterUrl(cluster);
  return {
    url,
    pid: () => {
      const pid = clusterPid(cluster);
      if (pid === undefined) throw new Error(`private PostgreSQL ${name} is not running`);
      return pid;
    },
    configure: (settings) =>
      withClient(url, async (client) => {
        for (const [key, value] of Object.entries(settings)) {
          await client.query(`ALTER SYSTEM SET ${key} = '${value.replaceAll("'", "''")}'`);
        }
        await client.query("SELECT pg_reload_conf()");
      }),
    kill: () => stopCluster(cluster, "kill"),
    restart: async () => {
      await startCluster(cluster);
    },
    destroy: async () => {
      await stopCluster(cluster, "immediate").catch(() => undefined);
      rmSync(baseDir, { recursive: true, force: true });
    },
  };
}
