import { randomBytes } from "node:crypto";
import {
  appendFileSync,
  chmodSync,
  chownSync,
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { freePort } from "../../scripts/stack/free-port.js";
import { resolvePgBinaries } from "../../scripts/stack/pg-binaries.js";
import { isAlive, isRoot, pidExists, runAsPostgres, tail, waitUntil } from "../../scripts/stack/processes.js";
import type { ServerCertificate } from "./tls-certs.js";

/** The superuser the private cluster's tests connect as (over TLS, with a generated password). */
export const SECURE_PG_ADMIN = "sec_admin";

export interface SecurePostgres {
  port: number;
  /** The postmaster's pid, started by us: stop() ends exactly this process. */
  pid: number;
  adminPassword: string;
  /** postgres://sec_admin:<pw>@127.0.0.1:<port>/<database>, plus `query` (e.g. "sslmode=verify-full"). */
  url(database: string, query?: string, user?: string, password?: string): string;
  /** Admin SQL over the cluster's private unix socket (trust, dir 0700 owned by postgres). */
  adminSql(database: string, sql: string, params?: unknown[]): Promise<pg.QueryResult>;
  logFile: string;
  stop(): Promise<void>;
}

/**
 * A fresh temp dir the `postgres` OS user can traverse (mkdtemp makes it 0700 root): the private servers,
 * certificates and logs of a test file live under it and are removed with it.
 */
export function secureTempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), `${prefix}-`));
  chmodSync(dir, 0o711);
  return dir;
}

function postgresIds(): { uid: number; gid: number } | undefined {
  if (!isRoot()) return undefined;
  const line = readFileSync("/etc/passwd", "utf8")
    .split("\n")
    .find((l) => l.startsWith("postgres:"));
  if (!line) throw new Error("running as root needs a `postgres` OS user to own the cluster");
  const [, , uid, gid] = line.split(":");
  return { uid: Number(uid), gid: Number(gid) };
}

function ownedBy(path: string, mode: number): void {
  const ids = postgresIds();
  if (ids) chownSync(path, ids.uid, ids.gid);
  chmodSync(path, mode);
}

/**
 * A private PostgreSQL cluster in `baseDir` that accepts TCP connections only over TLS (`ssl = on` and
 * nothing but `hostssl` lines in pg_hba.conf), with a server certificate from the test's own CA.
 * wal_level = logical, so it can be a capture source and a standby at once (different databases).
 */
export async function startSecurePostgres(baseDir: string, cert: ServerCertificate): Promise<SecurePostgres> {
  const bins = await resolvePgBinaries("debian", () => undefined);
  mkdirSync(baseDir, { recursive: true });
  // The postgres OS user must traverse the base dir (mkdtemp makes it 0700 root).
  chmodSync(baseDir, 0o711);
  const dataDir = join(baseDir, "data");
  const socketDir = join(baseDir, "sock");
  const logFile = join(baseDir, "postgres.log");
  for (const dir of [dataDir, socketDir]) {
    mkdirSync(dir, { recursive: true });
    ownedBy(dir, 0o700);
  }
  writeFileSync(logFile, "");
  ownedBy(logFile, 0o600);
  await runAsPostgres(
    join(bins.bindir, "initdb"),
    ["-D", dataDir, "-U", "postgres", "-E", "UTF8", "--locale=C", "--auth-local=trust", "--auth-host=reject"],
    { cwd: baseDir },
  );
  // PostgreSQL refuses a key file others can read; it must belong to the server's user.
  for (const [from, to, mode] of [
    [cert.certFile, "server.crt", 0o644],
    [cert.keyFile, "server.key", 0o600],
  ] as const) {
    copyFileSync(from, join(dataDir, to));
    ownedBy(join(dataDir, to), mode);
  }
  writeFileSync(
    join(dataDir, "pg_hba.conf"),
    [
      // Admin over the private unix socket; every TCP connection must be TLS (no plain `host` lines).
      "local all all trust",
      "hostssl all all 127.0.0.1/32 scram-sha-256",
      "hostssl replication all 127.0.0.1/32 scram-sha-256",
      "",
    ].join("\n"),
  );
  const port = await freePort();
  appendFileSync(
    join(dataDir, "postgresql.conf"),
    [
      "",
      "# diffrelay security test: TLS only",
      "listen_addresses = '127.0.0.1'",
      `port = ${port}`,
      `unix_socket_directories = '${socketDir}'`,
      "ssl = on",
      "ssl_cert_file = 'server.crt'",
      "ssl_key_file = 'server.key'",
      "ssl_min_protocol_version = 'TLSv1.2'",
      "wal_level = logical",
      "max_replication_slots = 16",
      "max_wal_senders = 16",
      "fsync = off",
      "synchronous_commit = off",
      "full_page_writes = off",
      "log_connections = on",
      "log_line_prefix = '%m [%p] %q%u@%d '",
      "",
    ].join("\n"),
  );
  try {
    await runAsPostgres(
      join(bins.bindir, "pg_ctl"),
      ["-D", dataDir, "-l", logFile, "-w", "-t", "60", "start"],
      {
        cwd: dataDir,
      },
    );
  } catch (err) {
    throw new Error(`TLS PostgreSQL did not start: ${(err as Error).message}\n${tail(logFile)}`);
  }
  const pid = Number(readFileSync(join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
  if (!isAlive(pid)) throw new Error(`TLS PostgreSQL has no live postmaster\n${tail(logFile)}`);

  const adminPassword = randomBytes(18).toString("base64url");
  const adminSql = async (database: string, sql: string, params: unknown[] = []) => {
    const client = new pg.Client({ host: socketDir, port, user: "postgres", database });
    await client.connect();
    try {
      return await client.query(sql, params);
    } finally {
      await client.end().catch(() => undefined);
    }
  };
  await adminSql(
    "postgres",
    `CREATE ROLE ${SECURE_PG_ADMIN} LOGIN SUPERUSER REPLICATION PASSWORD '${adminPassword}'`,
  );
  const url = (database: string, query = "", user = SECURE_PG_ADMIN, password = adminPassword) =>
    `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(database)}${query ? `?${query}` : ""}`;

  return {
    port,
    pid,
    adminPassword,
    url,
    adminSql,
    logFile,
    async stop() {
      if (!pidExists(pid)) return;
      // SIGINT is PostgreSQL's "fast" shutdown: sessions end, a checkpoint is written.
      process.kill(pid, "SIGINT");
      await waitUntil(`TLS PostgreSQL (pid ${pid}) to stop`, 30_000, () => !pidExists(pid)).catch(
        async () => {
          if (pidExists(pid)) process.kill(pid, "SIGKILL");
          await waitUntil(`TLS PostgreSQL (pid ${pid}) to die`, 10_000, () => !pidExists(pid));
        },
      );
    },
  };
}
