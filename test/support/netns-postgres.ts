// A PostgreSQL server started inside a host's network namespace (netns-hosts.ts), listening on the host's
// address only, with synchronous_commit = on and wal_level = logical, reachable by the application role from
// the bridge's subnet. Administered over its unix socket (a path: reachable from outside the namespace).
import { appendFileSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import {
  bootstrapAppRole,
  clusterPid,
  initCluster,
  PG_DATABASE,
  PG_USER,
  stopCluster,
} from "../../scripts/stack/postgres-cluster.js";
import { run, tail, waitUntil } from "../../scripts/stack/processes.js";
import type { PgClusterState } from "../../scripts/stack/stack-state.js";
import type { NetnsHost } from "./netns-hosts.js";
import type { PrivatePostgres } from "./private-postgres.js";

const PORT = 5432;

async function asAdmin(c: PgClusterState, sql: string): Promise<void> {
  const client = new pg.Client({
    host: c.socketDir,
    port: c.port,
    user: "postgres",
    database: "postgres",
    // Never waits for a synchronous standby: zero-loss mode names one that may be gone.
    options: "-c synchronous_commit=local",
  });
  await client.connect();
  try {
    await client.query(sql);
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function start(host: NetnsHost, c: PgClusterState, url: string): Promise<void> {
  if (clusterPid(c) === undefined) {
    try {
      await run(
        "ip",
        [
          "netns",
          "exec",
          host.netns,
          "runuser",
          "-u",
          "postgres",
          "--",
          join(c.bindir, "pg_ctl"),
          "-D",
          c.dataDir,
          "-l",
          c.logFile,
          "-w",
          "-t",
          "60",
          "start",
        ],
        { cwd: c.dataDir },
      );
    } catch (err) {
      throw new Error(
        `PostgreSQL of host ${host.name} did not start: ${(err as Error).message}\n${tail(c.logFile)}`,
      );
    }
  }
  await bootstrapAppRole(c);
  await waitUntil(
    `PostgreSQL of host ${host.name} on ${host.address}:${PORT}`,
    30_000,
    async () => {
      const probe = new pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
      try {
        await probe.connect();
        await probe.query("SELECT 1");
        return true;
      } finally {
        await probe.end().catch(() => undefined);
      }
    },
    () => tail(c.logFile),
  );
}

/** Initialises and starts a server in the host's namespace; `password` is the application role's. */
export async function startNetnsPostgres(
  host: NetnsHost,
  subnet: string,
  password: string,
): Promise<PrivatePostgres> {
  const baseDir = mkdtempSync(join(tmpdir(), `diffrelay-${host.netns}-`));
  let state: PgClusterState | undefined;
  try {
    state = await initCluster(baseDir, host.name, "debian", () => undefined);
    state.password = password;
    state.port = PORT;
    writeFileSync(
      join(state.dataDir, "pg_hba.conf"),
      [
        "local all all trust",
        `host all ${PG_USER} ${subnet} scram-sha-256`,
        `host replication ${PG_USER} ${subnet} scram-sha-256`,
        "",
      ].join("\n"),
    );
    // Later lines win over initCluster's: the host's own address, the default port, commits that wait.
    appendFileSync(
      join(state.dataDir, "postgresql.conf"),
      [
        "",
        "# fault suite host",
        `listen_addresses = '${host.address}'`,
        `port = ${PORT}`,
        "synchronous_commit = on",
        "wal_level = logical",
        "",
      ].join("\n"),
    );
  } catch (err) {
    rmSync(baseDir, { recursive: true, force: true });
    throw err;
  }
  const cluster = state;
  const url = `postgres://${PG_USER}:${encodeURIComponent(password)}@${host.address}:${PORT}/${PG_DATABASE}`;
  try {
    await start(host, cluster, url);
  } catch (err) {
    await stopCluster(cluster, "immediate").catch(() => undefined);
    rmSync(baseDir, { recursive: true, force: true });
    throw err;
  }
  return {
    url,
    pid: () => {
      const pid = clusterPid(cluster);
      if (pid === undefined) throw new Error(`PostgreSQL of host ${host.name} is not running`);
      return pid;
    },
    configure: async (settings) => {
      for (const [key, value] of Object.entries(settings))
        await asAdmin(cluster, `ALTER SYSTEM SET ${key} = '${value.replaceAll("'", "''")}'`);
      await asAdmin(cluster, "SELECT pg_reload_conf()");
    },
    kill: () => stopCluster(cluster, "kill"),
    restart: () => start(host, cluster, url),
    destroy: async () => {
      await stopCluster(cluster, "immediate").catch(() => undefined);
      rmSync(baseDir, { recursive: true, force: true });
    },
  };
}
