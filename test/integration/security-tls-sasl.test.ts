import { rmSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { postgresClientConfig } from "../../src/config/postgres-connection.js";
import { type DiffrelayProcess, spawnDiffrelay } from "../support/child-process.js";
import { stopProcess } from "../support/replication-pipeline.js";
import { SECURE_KAFKA_USER, type SecureKafka, startSecureKafka } from "../support/secure-kafka.js";
import { type SecurePostgres, secureTempDir, startSecurePostgres } from "../support/secure-postgres.js";
import { expectNoSecret, metricsBase, scrapeEndpoints } from "../support/secure-scan.js";
import {
  type CertificateAuthority,
  createCertificateAuthority,
  issueServerCertificate,
} from "../support/tls-certs.js";

/**
 * Against PRIVATE servers started here: a PostgreSQL that accepts TCP only over TLS (hostssl, certificate
 * from this file's CA) and a Kafka broker whose client listener is SASL_SSL with SCRAM-SHA-256. A full
 * capture → Kafka → apply round trip runs over TLS on every connection with the server certificates
 * verified against the CA; a wrong CA or a wrong SASL password fails with a clear error and no secret.
 */
const DDL = "CREATE TABLE public.ledger (id bigint PRIMARY KEY, note text, amount numeric(12,2));";

let dir: string;
let ca: CertificateAuthority;
let otherCa: CertificateAuthority;
let postgres: SecurePostgres;
let kafka: SecureKafka;
let secrets: string[];
const started: DiffrelayProcess[] = [];
const timings: Record<string, number> = {};

const spawn = (args: string[], env: Record<string, string> = {}) => {
  const p = spawnDiffrelay(args, env);
  started.push(p);
  return p;
};

async function timed<T>(name: string, fn: () => Promise<T>): Promise<T> {
  const t0 = Date.now();
  try {
    return await fn();
  } finally {
    timings[name] = Date.now() - t0;
  }
}

/** Capture flags for the private servers: TLS to PostgreSQL (URL sslmode + CA file) and SASL_SSL to Kafka. */
function captureArgs(opts: { caFile?: string; kafkaCaFile?: string; topic: string; slot: string }) {
  return [
    "capture",
    "--source-url",
    postgres.url("src", "sslmode=verify-full"),
    "--source-tls-ca-file",
    opts.caFile ?? ca.caFile,
    "--brokers",
    kafka.broker,
    "--kafka-tls",
    "--kafka-tls-ca-file",
    opts.kafkaCaFile ?? ca.caFile,
    "--kafka-sasl-mechanism",
    "scram-sha-256",
    "--kafka-sasl-username",
    SECURE_KAFKA_USER,
    "--topic",
    opts.topic,
    "--slot",
    opts.slot,
    "--publication",
    opts.slot,
    "--metrics-port",
    "0",
  ];
}

async function runToExit(p: DiffrelayProcess, timeoutMs: number) {
  const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
  const exit = await p.exited;
  clearTimeout(timer);
  return { code: exit.code, signal: exit.signal, output: p.output() };
}

beforeAll(async () => {
  await timed("servers up (CA, certs, TLS PostgreSQL, SASL_SSL Kafka)", async () => {
    dir = secureTempDir("diffrelay-tls");
    ca = await createCertificateAuthority(join(dir, "certs"), "good");
    otherCa = await createCertificateAuthority(join(dir, "certs"), "other");
    const cert = await issueServerCertificate(ca, join(dir, "certs"), "server");
    [postgres, kafka] = await Promise.all([
      startSecurePostgres(join(dir, "pg"), cert),
      startSecureKafka(join(dir, "kafka"), cert, ca.caFile),
    ]);
  });
  await postgres.adminSql("postgres", "CREATE DATABASE src");
  await postgres.adminSql("postgres", "CREATE DATABASE stb");
  await postgres.adminSql("src", DDL);
  await postgres.adminSql("stb", DDL);
  secrets = [postgres.adminPassword, kafka.password];
}, 180_000);

afterAll(async () => {
  await Promise.all(started.map((p) => stopProcess(p, 5_000)));
  await Promise.allSettled([kafka?.stop(), postgres?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
  console.log(`[security-tls-sasl] durations (ms): ${JSON.stringify(timings)}`);
});

describe("TLS to PostgreSQL, SASL_SSL (SCRAM-SHA-256) to Kafka", () => {
  it("the private PostgreSQL refuses a connection without TLS", async () => {
    const client = new pg.Client({ connectionString: postgres.url("src"), connectionTimeoutMillis: 5_000 });
    await expect(client.connect()).rejects.toThrow(/no pg_hba\.conf entry .* no encryption/);
    await client.end().catch(() => undefined);
  });

  it("capture → Kafka (SASL_SSL) → apply round trip, every connection TLS with the server verified against the CA", async () => {
    await timed("round trip", async () => {
      const env = { DIFFRELAY_KAFKA_SASL_PASSWORD: kafka.password };
      const capture = spawn(captureArgs({ topic: "tls_rt", slot: "tls_rt" }), env);
      await capture.waitForOutput(/"capture publishing"/, 60_000);
      const apply = spawn(
        [
          "apply",
          "--standby-url",
          postgres.url("stb", "sslmode=verify-full"),
          "--standby-tls-ca-file",
          ca.caFile,
          "--standby-name",
          "tls1",
          "--brokers",
          kafka.broker,
          "--kafka-tls",
          "--kafka-tls-ca-file",
          ca.caFile,
          "--kafka-sasl-mechanism",
          "scram-sha-256",
          "--kafka-sasl-username",
          SECURE_KAFKA_USER,
          "--topic",
          "tls_rt",
          "--metrics-port",
          "0",
        ],
        env,
      );
      await apply.waitForOutput(/applying from the standby's position/, 60_000);
      await postgres.adminSql(
        "src",
        "INSERT INTO public.ledger SELECT g, 'note ' || g, g * 1.5 FROM generate_series(1, 200) g",
      );
      await postgres.adminSql("src", "UPDATE public.ledger SET note = 'changed' WHERE id % 10 = 0");
      await postgres.adminSql("src", "DELETE FROM public.ledger WHERE id > 190");

      // While both run: every diffrelay session on the server (capture's walsender, named after its
      // slot for synchronous_standby_names, its catalog connections, the applier's) is TLS.
      const sessions = await postgres.adminSql(
        "postgres",
        `SELECT a.datname, a.backend_type, s.ssl, s.version
           FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
          WHERE a.application_name IN ('diffrelay', 'tls_rt')`,
      );
      expect(sessions.rows.length).toBeGreaterThanOrEqual(3);
      expect(sessions.rows.every((r) => r.ssl === true)).toBe(true);
      expect(sessions.rows.some((r) => r.backend_type === "walsender" && r.datname === "src")).toBe(true);
      expect(sessions.rows.some((r) => r.datname === "stb")).toBe(true);

      const deadline = Date.now() + 60_000;
      const digest =
        "SELECT count(*)::int AS n, md5(string_agg(id || note || amount, ',' ORDER BY id)) AS h FROM public.ledger";
      const want = (await postgres.adminSql("src", digest)).rows[0];
      expect(want.n).toBe(190);
      for (;;) {
        const got = (await postgres.adminSql("stb", digest)).rows[0];
        if (got.n === want.n && got.h === want.h) break;
        if (Date.now() > deadline) throw new Error(`standby did not converge: ${JSON.stringify(got)}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      const endpoints =
        (await scrapeEndpoints(await metricsBase(capture))) +
        (await scrapeEndpoints(await metricsBase(apply)));
      await stopProcess(apply);
      await stopProcess(capture);
      expectNoSecret("TLS/SASL round trip: logs", capture.output() + apply.output(), secrets);
      expectNoSecret("TLS/SASL round trip: /metrics /status /healthz", endpoints, secrets);
    });
  });

  it("the CA file is what verifies: with sslmode=verify-full in the URL and the right CA it connects, another CA is refused", async () => {
    const url = postgres.url("src", "sslmode=verify-full");
    const good = new pg.Client(postgresClientConfig(url, { caFile: ca.caFile, insecure: false }));
    await good.connect();
    const { rows } = await good.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()");
    expect(rows[0]?.ssl).toBe(true);
    await good.end();
    const bad = new pg.Client(postgresClientConfig(url, { caFile: otherCa.caFile, insecure: false }));
    await expect(bad.connect()).rejects.toThrow(/self[- ]signed certificate|unable to verify/);
    await bad.end().catch(() => undefined);
  });

  it("a wrong CA for PostgreSQL: the capture stops with the TLS verification error and no secret", async () => {
    const r = await timed("wrong PostgreSQL CA", () =>
      runToExit(
        spawn(captureArgs({ caFile: otherCa.caFile, topic: "tls_badca", slot: "tls_badca" }), {
          DIFFRELAY_KAFKA_SASL_PASSWORD: kafka.password,
        }),
        60_000,
      ),
    );
    expect(r.signal).toBeNull();
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(
      /self[- ]signed certificate in certificate chain|unable to verify the first certificate/,
    );
    expectNoSecret("capture with a wrong PostgreSQL CA", r.output, secrets);
  });

  it("a wrong SASL password: the capture stops with an authentication error and no secret", async () => {
    const wrong = `${kafka.password}-wrong`;
    const r = await timed("wrong SASL password", () =>
      runToExit(
        spawn(captureArgs({ topic: "tls_badpw", slot: "tls_badpw" }), {
          DIFFRELAY_KAFKA_SASL_PASSWORD: wrong,
        }),
        90_000,
      ),
    );
    expect(r.signal).toBeNull();
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/SASL SCRAM SHA256 authentication failed|[Aa]uthentication failed/);
    expectNoSecret("capture with a wrong SASL password", r.output, [...secrets, wrong]);
  });

  it("a wrong CA for Kafka: the capture reports the TLS verification error and no secret", async () => {
    const p = spawn(captureArgs({ kafkaCaFile: otherCa.caFile, topic: "tls_kca", slot: "tls_kca" }), {
      DIFFRELAY_KAFKA_SASL_PASSWORD: kafka.password,
    });
    const r = await timed("wrong Kafka CA", () => runToExit(p, 90_000));
    expect(r.signal).toBeNull();
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/self[- ]signed certificate in certificate chain|unable to verify/);
    expectNoSecret("capture with a wrong Kafka CA", r.output, secrets);
  });
});
