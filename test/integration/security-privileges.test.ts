import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DiffrelayProcess, spawnDiffrelay } from "../support/child-process.js";
import { stopProcess } from "../support/replication-pipeline.js";
import { type SecurePostgres, secureTempDir, startSecurePostgres } from "../support/secure-postgres.js";
import { expectNoSecret } from "../support/secure-scan.js";
import { testServices, uniqueName } from "../support/services.js";
import { createCertificateAuthority, issueServerCertificate } from "../support/tls-certs.js";

/**
 * Least privilege, end to end: the capture runs as a non-superuser REPLICATION role that owns the
 * published table (and holds CREATE on the database and EXECUTE on pg_control_system()); the applier
 * runs as a non-superuser with DML on its tables, CREATE on the database and SET ON PARAMETER
 * session_replication_role (PG15+). Without REPLICATION the capture stops with exit 3; without the SET
 * grant the applier cannot apply. A private PostgreSQL (TLS, `hostssl all all`) hosts the roles, because
 * the shared stack's pg_hba admits only its own role; Kafka is the shared broker.
 */
const services = testServices();
const TABLE_DDL =
  "CREATE TABLE public.acct (id bigserial PRIMARY KEY, owner text NOT NULL, balance numeric NOT NULL);";
const suffix = randomBytes(3).toString("hex");
const roles = {
  capture: { name: `sec_capture_${suffix}`, password: randomBytes(15).toString("base64url") },
  noReplication: { name: `sec_norepl_${suffix}`, password: randomBytes(15).toString("base64url") },
  apply: { name: `sec_apply_${suffix}`, password: randomBytes(15).toString("base64url") },
  applyNoSet: { name: `sec_apply_noset_${suffix}`, password: randomBytes(15).toString("base64url") },
};
const secrets = Object.values(roles).map((r) => r.password);

let dir: string;
let caFile: string;
let pgs: SecurePostgres;
const started: DiffrelayProcess[] = [];

const url = (db: string, role: { name: string; password: string }) =>
  pgs.url(db, "sslmode=verify-full", role.name, role.password);

function capture(db: string, role: { name: string; password: string }, topic: string): DiffrelayProcess {
  const p = spawnDiffrelay([
    "capture",
    "--source-url",
    url(db, role),
    "--source-tls-ca-file",
    caFile,
    "--brokers",
    services.kafkaBrokers.join(","),
    "--topic",
    topic,
    "--slot",
    topic,
    "--publication",
    topic,
    "--tables",
    "public.acct",
    "--metrics-port",
    "0",
  ]);
  started.push(p);
  return p;
}

function apply(db: string, role: { name: string; password: string }, topic: string): DiffrelayProcess {
  const p = spawnDiffrelay([
    "apply",
    "--standby-url",
    url(db, role),
    "--standby-tls-ca-file",
    caFile,
    "--standby-name",
    "least1",
    "--brokers",
    services.kafkaBrokers.join(","),
    "--topic",
    topic,
    "--metrics-port",
    "0",
  ]);
  started.push(p);
  return p;
}

beforeAll(async () => {
  dir = secureTempDir("diffrelay-priv");
  const ca = await createCertificateAuthority(join(dir, "certs"), "priv");
  caFile = ca.caFile;
  pgs = await startSecurePostgres(
    join(dir, "pg"),
    await issueServerCertificate(ca, join(dir, "certs"), "server"),
  );
  const sql = (db: string, text: string) => pgs.adminSql(db, text);
  for (const r of [roles.capture, roles.apply, roles.applyNoSet])
    await sql("postgres", `CREATE ROLE ${r.name} LOGIN NOSUPERUSER PASSWORD '${r.password}'`);
  await sql("postgres", `ALTER ROLE ${roles.capture.name} REPLICATION`);
  await sql(
    "postgres",
    `CREATE ROLE ${roles.noReplication.name} LOGIN NOSUPERUSER NOREPLICATION PASSWORD '${roles.noReplication.password}'`,
  );
  for (const db of ["src", "src_norepl", "stb", "stb_noset"]) {
    await sql("postgres", `CREATE DATABASE ${db}`);
    await sql(db, TABLE_DDL);
  }
  // Capture: CREATE on the database (the diffrelay schema), ownership of the published table (REPLICA
  // IDENTITY, and a FOR TABLE publication), EXECUTE on pg_control_system() (the source's identity).
  for (const [db, r] of [
    ["src", roles.capture],
    ["src_norepl", roles.noReplication],
  ] as const) {
    await sql(db, `GRANT CREATE ON DATABASE ${db} TO ${r.name}`);
    await sql(db, `ALTER TABLE public.acct OWNER TO ${r.name}`);
    await sql(db, `GRANT EXECUTE ON FUNCTION pg_catalog.pg_control_system() TO ${r.name}`);
  }
  // Apply: CREATE on the database (its diffrelay schema), DML on the replicated tables, setval on their
  // sequences, and SET on session_replication_role.
  for (const [db, r] of [
    ["stb", roles.apply],
    ["stb_noset", roles.applyNoSet],
  ] as const) {
    await sql(db, `GRANT CREATE ON DATABASE ${db} TO ${r.name}`);
    await sql(
      db,
      `GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA public TO ${r.name}`,
    );
    await sql(db, `GRANT SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA public TO ${r.name}`);
  }
  await sql("postgres", `GRANT SET ON PARAMETER session_replication_role TO ${roles.apply.name}`);
}, 120_000);

afterAll(async () => {
  await Promise.all(started.map((p) => stopProcess(p, 5_000)));
  await pgs?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe("least privilege", () => {
  it("capture as a non-superuser REPLICATION role and apply as a non-superuser replicate end to end", async () => {
    const topic = uniqueName("sec_least");
    const cap = capture("src", roles.capture, topic);
    await cap.waitForOutput(/"capture publishing"/, 60_000);
    // Not a superuser: the setup skipped the DDL event triggers (it raises only a NOTICE, not logged).
    const triggers = await pgs.adminSql(
      "src",
      "SELECT evtname FROM pg_event_trigger WHERE evtname LIKE 'diffrelay%'",
    );
    expect(triggers.rows).toEqual([]);
    const app = apply("stb", roles.apply, topic);
    await app.waitForOutput(/applying from the standby's position/, 60_000);
    await pgs.adminSql(
      "src",
      "INSERT INTO public.acct (owner, balance) SELECT 'o' || g, g FROM generate_series(1, 100) g",
    );
    await pgs.adminSql("src", "UPDATE public.acct SET balance = balance * 2 WHERE id % 3 = 0");
    await pgs.adminSql("src", "DELETE FROM public.acct WHERE id > 95");
    const digest =
      "SELECT count(*)::int AS n, md5(string_agg(id || owner || balance, ',' ORDER BY id)) AS h FROM public.acct";
    const want = (await pgs.adminSql("src", digest)).rows[0];
    expect(want.n).toBe(95);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const got = (await pgs.adminSql("stb", digest)).rows[0];
      if (got.n === want.n && got.h === want.h) break;
      if (Date.now() > deadline)
        throw new Error(`standby did not converge: ${JSON.stringify(got)}\n${app.output().slice(-3000)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    // The roles really are what the test claims.
    const attrs = await pgs.adminSql(
      "postgres",
      `SELECT rolname, rolsuper, rolreplication FROM pg_roles WHERE rolname IN ('${roles.capture.name}', '${roles.apply.name}') ORDER BY 1`,
    );
    expect(attrs.rows).toEqual([
      { rolname: roles.apply.name, rolsuper: false, rolreplication: false },
      { rolname: roles.capture.name, rolsuper: false, rolreplication: true },
    ]);
    await stopProcess(app);
    await stopProcess(cap);
    expectNoSecret("least-privilege capture and apply logs", cap.output() + app.output(), secrets);
  });

  it("a capture role without REPLICATION stops with a clear error and exit code 3", async () => {
    const p = capture("src_norepl", roles.noReplication, uniqueName("sec_norepl"));
    const exit = await p.exited;
    expect(exit.code, p.output()).toBe(3);
    expect(p.output()).toMatch(/permission denied to use replication slots|REPLICATION/);
    expectNoSecret("capture without REPLICATION", p.output(), secrets);
  });

  it("an applier role without SET ON PARAMETER session_replication_role cannot apply (PG15 needs the grant)", async () => {
    const topic = uniqueName("sec_noset");
    const cap = capture("src", roles.capture, topic);
    await cap.waitForOutput(/"capture publishing"/, 60_000);
    const app = apply("stb_noset", roles.applyNoSet, topic);
    await pgs.adminSql("src", "INSERT INTO public.acct (owner, balance) VALUES ('late', 1)");
    await app.waitForOutput(/permission denied to set parameter \\?"session_replication_role\\?"/, 60_000);
    const rows = (await pgs.adminSql("stb_noset", "SELECT count(*)::int AS n FROM public.acct")).rows[0];
    expect(rows.n).toBe(0);
    await stopProcess(app);
    await stopProcess(cap);
  });
});
