import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DiffrelayProcess, spawnDiffrelay } from "../support/child-process.js";
import { stopProcess } from "../support/replication-pipeline.js";
import {
  expectNoSecret,
  metricsBase,
  scrapeEndpoints,
  urlPassword,
  withPassword,
} from "../support/secure-scan.js";
import {
  createTestDatabase,
  runSql,
  type TestDatabase,
  testServices,
  uniqueName,
} from "../support/services.js";

/**
 * Passwords (in connection URLs, and the Kafka SASL password) never leave a diffrelay process as text:
 * not in its logs (at debug level), its errors, its /metrics, /status, /healthz, nor `diffrelay status`.
 * Everything runs as real processes against the shared stack; failures are provoked on purpose.
 */
const services = testServices();
const DDL =
  "CREATE TABLE public.account (id int PRIMARY KEY, owner text NOT NULL, balance numeric NOT NULL);";

let source: TestDatabase;
let standby: TestDatabase;
let secrets: string[];
const saslPassword = `Sasl-${randomBytes(9).toString("base64url")}!`;
const wrongPassword = `Wr0ng-${randomBytes(9).toString("base64url")}`;
const topic = uniqueName("sec_redact_topic");
const slot = uniqueName("sec_redact_slot");
const started: DiffrelayProcess[] = [];
let tempDir: string;

function spawn(args: string[], env: Record<string, string> = {}): DiffrelayProcess {
  const p = spawnDiffrelay([...args, "--log-level", "debug"], env);
  started.push(p);
  return p;
}

/** Runs a command that must fail; returns its exit code and everything it printed. */
async function runToExit(args: string[], env: Record<string, string> = {}, timeoutMs = 60_000) {
  const p = spawn(args, env);
  const timer = setTimeout(() => p.kill("SIGKILL"), timeoutMs);
  const exit = await p.exited;
  clearTimeout(timer);
  return { code: exit.code, output: p.output() };
}

beforeAll(async () => {
  const standbyServer = services.standbyUrls[0];
  if (!standbyServer) throw new Error("the redaction test needs a standby server");
  source = await createTestDatabase(services.sourceUrl, "sec_redact_src");
  standby = await createTestDatabase(standbyServer, "sec_redact_stb");
  await runSql(source.url, DDL);
  await runSql(standby.url, DDL);
  secrets = [urlPassword(source.url), urlPassword(standby.url), saslPassword, wrongPassword];
  tempDir = mkdtempSync(join(tmpdir(), "diffrelay-redact-"));
});

afterAll(async () => {
  await Promise.all(started.map((p) => stopProcess(p, 5_000)));
  await Promise.allSettled([source?.drop(), standby?.drop()]);
  if (tempDir) rmSync(tempDir, { recursive: true, force: true });
});

describe("secret redaction", () => {
  it("a working capture and apply never print a password: logs, /metrics, /status, /healthz, diffrelay status", async () => {
    const brokers = services.kafkaBrokers.join(",");
    const capture = spawn([
      "capture",
      "--source-url",
      source.url,
      "--brokers",
      brokers,
      "--topic",
      topic,
      "--slot",
      slot,
      "--publication",
      slot,
      "--metrics-port",
      "0",
    ]);
    await capture.waitForOutput(/"capture publishing"/, 60_000);
    const apply = spawn([
      "apply",
      "--standby-url",
      standby.url,
      "--standby-name",
      "sec1",
      "--brokers",
      brokers,
      "--topic",
      topic,
      "--metrics-port",
      "0",
    ]);
    await apply.waitForOutput(/applying from the standby's position/, 60_000);
    await runSql(
      source.url,
      "INSERT INTO public.account SELECT g, 'owner ' || g, g * 10 FROM generate_series(1, 50) g",
    );
    await runSql(source.url, "UPDATE public.account SET balance = balance + 1 WHERE id <= 10");
    const deadline = Date.now() + 60_000;
    for (;;) {
      const { rows } = await runSql<{ n: string; s: string }>(
        standby.url,
        "SELECT count(*)::text AS n, sum(balance)::text AS s FROM public.account",
      );
      if (rows[0]?.n === "50" && rows[0]?.s === "12760") break;
      if (Date.now() > deadline) throw new Error(`standby did not catch up: ${JSON.stringify(rows)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const captureBase = await metricsBase(capture);
    const applyBase = await metricsBase(apply);
    const captureEndpoints = await scrapeEndpoints(captureBase);
    const applyEndpoints = await scrapeEndpoints(applyBase);
    expect(captureEndpoints).toContain("diffrelay_capture_transactions_total");
    expect(applyEndpoints).toContain("diffrelay_apply_rows_total");
    expectNoSecret("capture /metrics /status /healthz", captureEndpoints, secrets);
    expectNoSecret("apply /metrics /status /healthz", applyEndpoints, secrets);

    for (const format of [["--json"], []]) {
      const status = await runToExit([
        "status",
        "--source-url",
        source.url,
        "--standby-url",
        standby.url,
        "--standby-name",
        "sec1",
        "--brokers",
        brokers,
        "--topic",
        topic,
        "--slot",
        slot,
        "--capture-status-url",
        `${captureBase}/status`,
        "--apply-status-urls",
        `${applyBase}/status`,
        ...format,
      ]);
      expect(status.code, status.output).toBe(0);
      expect(status.output).toContain("sec1");
      expectNoSecret(`diffrelay status ${format.join(" ")}`, status.output, secrets);
    }

    await stopProcess(apply);
    await stopProcess(capture);
    expect(capture.output()).toContain("capture publishing");
    expectNoSecret("capture logs (debug)", capture.output(), secrets);
    expectNoSecret("apply logs (debug)", apply.output(), secrets);
  });

  it("a wrong password: the capture exits with the server's reason and no password", async () => {
    const r = await runToExit([
      "capture",
      "--source-url",
      withPassword(source.url, wrongPassword),
      "--brokers",
      services.kafkaBrokers.join(","),
      "--topic",
      topic,
    ]);
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/password authentication failed/);
    expectNoSecret("capture with a wrong password", r.output, secrets);
  });

  it("a wrong password on the standby: the applier retries, and its /status error has no password", async () => {
    const apply = spawn([
      "apply",
      "--standby-url",
      withPassword(standby.url, wrongPassword),
      "--standby-name",
      "sec1",
      "--brokers",
      services.kafkaBrokers.join(","),
      "--topic",
      topic,
      "--metrics-port",
      "0",
    ]);
    const base = await metricsBase(apply);
    await apply.waitForOutput(/password authentication failed/, 60_000);
    const endpoints = await scrapeEndpoints(base);
    expect(endpoints).toMatch(/password authentication failed/);
    const exit = await stopProcess(apply);
    // Either it was still retrying (stopped by us, 0) or it gave up on its own with an error code.
    expect(exit.code === 0 || (exit.code ?? 0) > 0).toBe(true);
    expectNoSecret("apply with a wrong password: /status", endpoints, secrets);
    expectNoSecret("apply with a wrong password: logs", apply.output(), secrets);
  });

  it("an unreachable host: the error names the address, never the password", async () => {
    const unreachable = new URL(source.url);
    unreachable.port = "1";
    const r = await runToExit([
      "capture",
      "--source-url",
      unreachable.toString(),
      "--brokers",
      services.kafkaBrokers.join(","),
      "--topic",
      topic,
    ]);
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/ECONNREFUSED 127\.0\.0\.1:1/);
    expectNoSecret("capture of an unreachable host", r.output, secrets);
  });

  it("configuration errors that contain URLs, DSNs and the SASL password print none of them (exit 2)", async () => {
    const [pw] = secrets as [string];
    const yaml = join(tempDir, "bad.yaml");
    writeFileSync(
      yaml,
      [
        "source:",
        `  url: "mysql://capture:${pw}@127.0.0.1:5432/app"`,
        "kafka:",
        "  brokers: ['127.0.0.1:9092']",
        "  sasl:",
        "    mechanism: scram-sha-1024",
        "    username: diffrelay",
        `    password: "${saslPassword}"`,
        "status:",
        `  standbys: ["s1=mysql://apply:${pw}@127.0.0.1/app"]`,
        "",
      ].join("\n"),
    );
    const cases: { args: string[]; env?: Record<string, string>; names: RegExp }[] = [
      // Not a postgres URL: the message shows the value given, password masked.
      {
        args: [
          "capture",
          "--source-url",
          `mysql://capture:${pw}@127.0.0.1/app`,
          "--brokers",
          "127.0.0.1:9092",
        ],
        names: /source\.url: given "mysql:\/\/capture:\*\*\*\*@127\.0\.0\.1\/app"/,
      },
      // A raw "@" inside the password (pg accepts it): the whole password is masked, not just its head.
      {
        args: ["apply", "--standby-url", `mysql://apply:x@${pw}@127.0.0.1/app`, "--brokers", "nope"],
        names: /standby\.url: given "mysql:\/\/apply:\*\*\*\*@127\.0\.0\.1\/app"/,
      },
      // A libpq keyword DSN instead of a URL.
      {
        args: ["capture", "--brokers", "127.0.0.1:9092"],
        env: { DIFFRELAY_SOURCE_URL: `host=127.0.0.1 user=capture password=${pw} dbname=app` },
        names: /source\.url: given "host=127\.0\.0\.1 user=capture password=\*\*\*\*/,
      },
      // The YAML file: bad URL, bad SASL mechanism next to the SASL password, bad status standby.
      {
        args: ["capture", "--config", yaml],
        env: { DIFFRELAY_KAFKA_SASL_PASSWORD: saslPassword },
        names: /kafka\.sasl\.mechanism: given "scram-sha-1024"/,
      },
      // A bad number next to a SASL password given as a flag.
      {
        args: [
          "capture",
          "--source-url",
          source.url,
          "--brokers",
          "127.0.0.1:9092",
          "--kafka-sasl-mechanism",
          "scram-sha-256",
          "--kafka-sasl-username",
          "diffrelay",
          "--kafka-sasl-password",
          saslPassword,
          "--max-message-bytes",
          "lots",
        ],
        names: /capture\.maxMessageBytes/,
      },
    ];
    for (const c of cases) {
      const r = await runToExit(c.args, c.env);
      expect(r.code, r.output).toBe(2);
      expect(r.output).toMatch(c.names);
      expectNoSecret(`config error (${c.args.slice(0, 3).join(" ")})`, r.output, secrets);
    }
  });

  it("a SASL password sent to a broker without SASL: the error is clear and has no password", async () => {
    const r = await runToExit(
      [
        "capture",
        "--source-url",
        source.url,
        "--brokers",
        services.kafkaBrokers.join(","),
        "--topic",
        `${topic}_sasl`,
        "--slot",
        `${slot}_sasl`,
        "--publication",
        `${slot}_sasl`,
        "--kafka-sasl-mechanism",
        "scram-sha-256",
        "--kafka-sasl-username",
        "diffrelay",
      ],
      { DIFFRELAY_KAFKA_SASL_PASSWORD: saslPassword },
      90_000,
    );
    expect(r.code).not.toBe(0);
    expect(r.output).toMatch(/SASL|sasl/);
    expectNoSecret("capture with SASL against a PLAINTEXT broker", r.output, secrets);
  });
});
