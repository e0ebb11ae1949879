import { createHash, randomBytes } from "node:crypto";
import {
  appendFileSync,
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { dirname, join } from "node:path";
import pg from "pg";
import { freePort, portIsFree } from "./free-port.js";
import { resolvePgBinaries } from "./pg-binaries.js";
import {
  descendants,
  isAlive,
  isRoot,
  pidExists,
  runAsPostgres,
  tail,
  terminate,
  waitUntil,
} from "./processes.js";
import type { PgClusterState, PgFlavor } from "./stack-state.js";

export type PgStopMode = "smart" | "fast" | "immediate" | "kill";
/**
 * The application role and database every stack URL points at. Not named
 * "diffrelay": with the default search_path ("$user", public) a role of that
 * name would create its tables in diffrelay's own bookkeeping schema.
 */
export const PG_USER = "stack_admin";
export const PG_DATABASE = "app";

function postgresIds(): { uid: number; gid: number } | undefined {
  if (!isRoot()) return undefined;
  const line = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((l) => l.startsWith("postgres:"));
  if (!line)
    throw new Error(
      "running as root needs a `postgres` OS user to own the clusters (apt's postgresql creates it)",
    );
  const [, , uid, gid] = line.split(":");
  return { uid: Number(uid), gid: Number(gid) };
}

/** A directory the postgres OS user owns (PostgreSQL insists on owning its data dir with mode 0700). */
function ownedDir(path: string): void {
  // Parents keep the default mode: the postgres user must be able to traverse them.
  mkdirSync(dirname(path), { recursive: true });
  mkdirSync(path, { recursive: true, mode: 0o700 });
  const ids = postgresIds();
  if (ids) chownSync(path, ids.uid, ids.gid);
}

/** Unix socket paths are limited to 107 bytes; deep checkouts fall back to a per-base-dir folder in /tmp. */
function socketDirFor(baseDir: string, name: string): string {
  const local = join(baseDir, "sock", name);
  if (`${local}/.s.PGSQL.65535`.length <= 100) return local;
  const hash = createHash("sha1").update(baseDir).digest("hex").slice(0, 12);
  return join("/tmp", `diffrelay-sock-${hash}`, name);
}

export async function initCluster(
  baseDir: string,
  name: string,
  flavor: PgFlavor,
  log: (m: string) => void,
): Promise<PgClusterState> {
  const bins = await resolvePgBinaries(flavor, log);
  const dataDir = join(baseDir, "pg", name);
  const socketDir = socketDirFor(baseDir, name);
  const logFile = join(baseDir, "logs", `pg-${name}.log`);
  // A data dir without state (state.json deleted by hand) cannot be trusted: its password is unknown.
  rmSync(dataDir, { recursive: true, force: true });
  // The postgres OS user must traverse the base dir (mkdtemp makes it 0700 root).
  mkdirSync(baseDir, { recursive: true });
  if (isRoot()) chmodSync(baseDir, statSync(baseDir).mode | 0o711);
  mkdirSync(join(baseDir, "pg"), { recursive: true });
  mkdirSync(join(baseDir, "logs"), { recursive: true });
  ownedDir(dataDir);
  ownedDir(socketDir);
  writeFileSync(logFile, "");
  const ids = postgresIds();
  if (ids) chownSync(logFile, ids.uid, ids.gid);

  await runAsPostgres(
    join(bins.bindir, "initdb"),
    [
      "-D",
      dataDir,
      "-U",
      "postgres",
      "-E",
      "UTF8",
      "--locale=C",
      "--auth-local=trust",
      "--auth-host=scram-sha-256",
    ],
    { cwd: baseDir },
  );
  const port = await freePort();
  // Admin over the unix socket with trust (its dir is 0700, so only root and postgres reach it);
  // the application role authenticates over TCP with a generated password.
  writeFileSync(
    join(dataDir, "pg_hba.conf"),
    [
      "local all all trust",
      `host all ${PG_USER} 127.0.0.1/32 scram-sha-256`,
      `host replication ${PG_USER} 127.0.0.1/32 scram-sha-256`,
      "",
    ].join("\n"),
  );
  appendFileSync(
    join(dataDir, "postgresql.conf"),
    [
      "",
      "# diffrelay dev/test stack",
      "listen_addresses = '127.0.0.1'",
      `port = ${port}`,
      `unix_socket_directories = '${socketDir}'`,
      // Standbys too: after a failover they become the capture source.
      "wal_level = logical",
      "max_replication_slots = 32",
      "max_wal_senders = 32",
      "max_connections = 200",
      // Throwaway dev/test data: durability is traded for speed (a host crash can corrupt these clusters).
      "fsync = off",
      "synchronous_commit = off",
      "full_page_writes = off",
      "log_line_prefix = '%m [%p] %q%u@%d '",
      "",
    ].join("\n"),
  );
  return {
    name,
    flavor,
    bindir: bins.bindir,
    version: bins.version,
    dataDir,
    socketDir,
    logFile,
    port,
    password: randomBytes(18).toString("base64url"),
  };
}

/**
 * A physical streaming standby of `primary`, copied with pg_basebackup, streaming under
 * `applicationName` (the name synchronous_standby_names matches). Started, not registered in the
 * stack's state: the bench makes one to compare with PostgreSQL's own synchronous replication.
 */
export async function startPhysicalStandby(
  baseDir: string,
  name: string,
  primary: PgClusterState,
  applicationName: string,
): Promise<PgClusterState> {
  const dataDir = join(baseDir, "pg", name);
  const socketDir = socketDirFor(baseDir, name);
  const logFile = join(baseDir, "logs", `pg-${name}.log`);
  rmSync(dataDir, { recursive: true, force: true });
  ownedDir(dataDir);
  ownedDir(socketDir);
  writeFileSync(logFile, "");
  const ids = postgresIds();
  if (ids) chownSync(logFile, ids.uid, ids.gid);
  const conninfo = `host=127.0.0.1 port=${primary.port} user=${PG_USER} password=${primary.password} application_name=${applicationName}`;
  await runAsPostgres(
    join(primary.bindir, "pg_basebackup"),
    ["-d", conninfo, "-D", dataDir, "-X", "stream", "--checkpoint=fast"],
    {
      cwd: dataDir,
    },
  );
  const port = await freePort();
  appendFileSync(
    join(dataDir, "postgresql.conf"),
    [
      "",
      "# physical standby",
      `port = ${port}`,
      `unix_socket_directories = '${socketDir}'`,
      `primary_conninfo = '${conninfo}'`,
      "",
    ].join("\n"),
  );
  writeFileSync(join(dataDir, "standby.signal"), "");
  if (ids) chownSync(join(dataDir, "standby.signal"), ids.uid, ids.gid);
  const standby: PgClusterState = { ...primary, name, dataDir, socketDir, logFile, port };
  try {
    await runAsPostgres(
      join(standby.bindir, "pg_ctl"),
      ["-D", dataDir, "-l", logFile, "-w", "-t", "60", "start"],
      {
        cwd: dataDir,
      },
    );
  } catch (err) {
    throw new Error(`physical standby ${name} did not start: ${(err as Error).message}\n${tail(logFile)}`);
  }
  return standby;
}

/** The postmaster's pid from postmaster.pid, if that process is alive. */
export function clusterPid(c: PgClusterState): number | undefined {
  const file = join(c.dataDir, "postmaster.pid");
  if (!existsSync(file)) return undefined;
  const pid = Number(readFileSync(file, "utf8").split("\n")[0]);
  return isAlive(pid) ? pid : undefined;
}

export function clusterUrl(c: PgClusterState, database = PG_DATABASE): string {
  return `postgres://${PG_USER}:${encodeURIComponent(c.password)}@127.0.0.1:${c.port}/${database}`;
}

async function query(config: pg.ClientConfig, sql: string): Promise<void> {
  const client = new pg.Client({ ...config, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
    await client.query(sql);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** A real query over TCP as the application role: what clients will do. */
export async function clusterAnswers(c: PgClusterState): Promise<boolean> {
  await query({ connectionString: clusterUrl(c) }, "select 1");
  return true;
}

/** Starts the cluster if its postmaster is not running; idempotent. Returns the postmaster pid. */
export async function startCluster(c: PgClusterState): Promise<number> {
  let pid = clusterPid(c);
  if (!pid) {
    if (!(await portIsFree(c.port))) {
      throw new Error(`cannot start PostgreSQL ${c.name}: port ${c.port} is taken by another process`);
    }
    try {
      await runAsPostgres(
        join(c.bindir, "pg_ctl"),
        ["-D", c.dataDir, "-l", c.logFile, "-w", "-t", "60", "start"],
        { cwd: c.dataDir },
      );
    } catch (err) {
      throw new Error(`PostgreSQL ${c.name} did not start: ${(err as Error).message}\n${tail(c.logFile)}`);
    }
    pid = clusterPid(c);
    if (!pid)
      throw new Error(`PostgreSQL ${c.name} started but has no live postmaster.pid\n${tail(c.logFile)}`);
  }
  await bootstrapAppRole(c);
  await waitUntil(
    `PostgreSQL ${c.name} on 127.0.0.1:${c.port}`,
    30_000,
    () => clusterAnswers(c),
    () => tail(c.logFile),
  );
  return pid;
}

/**
 * Idempotent bootstrap of a running cluster: the application role (its password kept in step with
 * state.json on every start) and its database. Runs over the cluster's Unix socket as postgres.
 */
export async function bootstrapAppRole(c: PgClusterState): Promise<void> {
  const pw = c.password.replaceAll("'", "''");
  // Never waits for a synchronous standby: a test's server may name one that is gone (zero-loss mode's capture).
  await query(
    {
      host: c.socketDir,
      port: c.port,
      user: "postgres",
      database: "postgres",
      options: "-c synchronous_commit=local",
    },
    `DO $$ BEGIN
       IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '${PG_USER}') THEN
         CREATE ROLE ${PG_USER} LOGIN SUPERUSER REPLICATION PASSWORD '${pw}';
       ELSE
         ALTER ROLE ${PG_USER} LOGIN SUPERUSER REPLICATION PASSWORD '${pw}';
       END IF;
     END $$;`,
  );
  const client = new pg.Client({ host: c.socketDir, port: c.port, user: "postgres", database: "postgres" });
  await client.connect();
  try {
    const exists = await client.query("SELECT 1 FROM pg_database WHERE datname = $1", [PG_DATABASE]);
    if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${PG_DATABASE} OWNER ${PG_USER}`);
  } finally {
    await client.end();
  }
}

/**
 * Stops by the postmaster's pid: pg_ctl for the orderly modes, SIGKILL for "kill" (a crash, as fault
 * tests need). After a kill we wait for the backends too: they exit on postmaster death, and a restart
 * is refused while they still hold the shared memory.
 */
export async function stopCluster(c: PgClusterState, mode: PgStopMode = "fast"): Promise<void> {
  const pid = clusterPid(c);
  if (!pid) return;
  const children = descendants(pid);
  if (mode === "kill") {
    process.kill(pid, "SIGKILL");
  } else {
    try {
      await runAsPostgres(join(c.bindir, "pg_ctl"), ["-D", c.dataDir, "-m", mode, "-w", "-t", "60", "stop"], {
        cwd: c.dataDir,
      });
    } catch {
      await terminate(pid, 10_000);
    }
  }
  await waitUntil(`PostgreSQL ${c.name} (pid ${pid}) and its backends to exit`, 30_000, () =>
    [pid, ...children].every((p) => !pidExists(p)),
  );
}
