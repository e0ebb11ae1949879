// Acceptance (issue 12, item 9): an error that repeats at the same position is not retried forever in
// silence, and what can never succeed is not retried at all. Faults are injected on the real standby:
// ENABLE ALWAYS triggers (they fire under session_replication_role = replica, as the applier runs) that
// raise a transient-looking SQLSTATE, a class 55 one, or sleep past the consumer's session timeout; and
// a schema-topic message that does not decode, produced straight into the schema topic.
import kafkajs from "kafkajs";
import { afterEach, describe, expect, it } from "vitest";
import { spawnDiffrelay } from "../support/child-process.js";
import { exitWithin, ReplicationPipeline, tail } from "../support/replication-pipeline.js";
import { metricsBase } from "../support/secure-scan.js";
import { runSql, testServices } from "../support/services.js";

const { Kafka, logLevel } = kafkajs;

const DDL = "CREATE TABLE items (id integer PRIMARY KEY, label text NOT NULL);";

/** A standby trigger that raises `sqlstate` for one row, firing under the applier's replica role too. */
function failingTrigger(id: number, sqlstate: string): string {
  return `
    CREATE FUNCTION reject_row() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.id = ${id} THEN
        RAISE EXCEPTION 'injected failure for items id %', NEW.id USING ERRCODE = '${sqlstate}';
      END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER reject_row BEFORE INSERT ON items FOR EACH ROW EXECUTE FUNCTION reject_row();
    ALTER TABLE items ENABLE ALWAYS TRIGGER reject_row;`;
}

async function get(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  return { status: res.status, body: await res.text() };
}

async function standbyIds(url: string): Promise<number[]> {
  const { rows } = await runSql<{ id: number }>(url, "SELECT id FROM items ORDER BY id");
  return rows.map((r) => r.id);
}

describe("apply: repeated and unrecoverable failures", () => {
  let pipeline: ReplicationPipeline | undefined;

  afterEach(async () => {
    await pipeline?.stop();
    pipeline = undefined;
  });

  async function start(
    prefix: string,
    options: { applyArgs?: string[]; captureArgs?: string[]; ddl?: string } = {},
  ) {
    const services = testServices();
    const p = await ReplicationPipeline.start({
      sourceServerUrl: services.sourceUrl,
      standbys: [{ name: "s1", serverUrl: services.standbyUrls[0] as string }],
      brokers: services.kafkaBrokers,
      prefix,
      ddl: options.ddl ?? DDL,
      applyArgs: options.applyArgs,
      captureArgs: options.captureArgs,
    });
    pipeline = p;
    return p;
  }

  it("a transient SQLSTATE (40001) that recurs at one position: reported stalled, then resumes once cured", {
    timeout: 180_000,
  }, async () => {
    const p = await start("stall_transient");
    const standbyUrl = p.standby("s1").db.url;
    const base = await metricsBase(p.standby("s1").applier);
    await runSql(p.source.url, "INSERT INTO items VALUES (1, 'before')");
    await p.waitForCatchUp();
    await runSql(standbyUrl, failingTrigger(2, "40001"));
    const position = (await p.position("s1"))?.nextOffset;
    await runSql(p.source.url, "INSERT INTO items VALUES (2, 'rejected on the standby')");

    await expect
      .poll(async () => JSON.parse((await get(`${base}/status`)).body).stalled, {
        timeout: 60_000,
        interval: 500,
      })
      .toMatchObject({ position: `topic ${p.topic} partition 0 offset ${position}` });
    const status = JSON.parse((await get(`${base}/status`)).body);
    expect(status.stalled.attempts).toBeGreaterThanOrEqual(5);
    expect(status.stalled.error).toMatch(/injected failure for items id 2/);
    expect(status.lastError).toMatch(/injected failure for items id 2/);
    const health = await get(`${base}/healthz`);
    expect(health.status).toBe(503);
    expect(JSON.parse(health.body).stalled.position).toBe(status.stalled.position);
    expect((await get(`${base}/metrics`)).body).toMatch(
      /^diffrelay_stalled\{[^}]*process="apply"[^}]*\} 1$/m,
    );
    expect(p.standby("s1").applier.output()).toMatch(
      /"msg":"stalled: the same failure \d+ times in a row at topic /,
    );

    const report = spawnDiffrelay([
      "status",
      "--brokers",
      p.options.brokers.join(","),
      "--topic",
      p.topic,
      "--standbys",
      `s1=${standbyUrl}`,
      "--apply-status-urls",
      `${base}/status`,
    ]);
    await report.exited;
    expect(report.output()).toMatch(
      new RegExp(
        `s1 STALLED: \\d+ identical failures in a row at topic ${p.topic} partition 0 offset ${position}`,
      ),
    );

    // Cured on the standby: the applier gets past the position on its own and is healthy again.
    await runSql(standbyUrl, "DROP TRIGGER reject_row ON items");
    await p.waitForCatchUp();
    expect(await standbyIds(standbyUrl)).toEqual([1, 2]);
    await expect.poll(async () => (await get(`${base}/healthz`)).status, { timeout: 30_000 }).toBe(200);
    expect((await get(`${base}/metrics`)).body).toMatch(
      /^diffrelay_stalled\{[^}]*process="apply"[^}]*\} 0$/m,
    );
    expect(JSON.parse((await get(`${base}/status`)).body).stalled).toBeNull();
  });

  it("class 55 (object not in prerequisite state) is not retried: exit 4 naming table, SQLSTATE and position", {
    timeout: 120_000,
  }, async () => {
    const p = await start("stall_class55");
    const standbyUrl = p.standby("s1").db.url;
    await runSql(standbyUrl, failingTrigger(7, "55000"));
    await runSql(p.source.url, "INSERT INTO items VALUES (7, 'rejected')");
    const applier = p.standby("s1").applier;
    const exit = await exitWithin(applier, 60_000);
    expect(exit, tail(applier.output())).toEqual({ code: 4, signal: null });
    expect(applier.output()).toMatch(
      /apply failed on \\"public\\".\\"items\\".*injected failure for items id 7.*SQLSTATE 55000/,
    );
    expect(applier.output()).toMatch(new RegExp(`topic ${p.topic} partition 0 offset \\d+`));
    expect(await standbyIds(standbyUrl)).toEqual([]);
  });

  it("a schema-topic message that does not decode stops the applier with exit 5, naming where it is", {
    timeout: 120_000,
  }, async () => {
    const p = await start("stall_schema");
    await runSql(p.source.url, "INSERT INTO items VALUES (1, 'before')");
    await p.waitForCatchUp();
    const kafka = new Kafka({
      clientId: "stall-schema-test",
      brokers: p.options.brokers,
      logLevel: logLevel.NOTHING,
    });
    const producer = kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    let offset: string;
    try {
      const [sent] = await producer.send({
        topic: `${p.topic}.schemas`,
        messages: [{ key: "garbage", value: Buffer.from("not a schema message"), partition: 0 }],
      });
      offset = sent?.baseOffset ?? "-1";
    } finally {
      await producer.disconnect();
    }
    await runSql(p.source.url, "INSERT INTO items VALUES (2, 'after')");
    const applier = p.standby("s1").applier;
    const exit = await exitWithin(applier, 60_000);
    expect(exit, tail(applier.output())).toEqual({ code: 5, signal: null });
    expect(applier.output()).toContain(
      `bad message at schema topic ${p.topic}.schemas partition 0 offset ${offset}`,
    );
    expect(await standbyIds(p.standby("s1").db.url)).toEqual([1]);
  });

  it("a chunk that takes longer to apply than the consumer session timeout is applied once, not replayed", {
    timeout: 240_000,
  }, async () => {
    // Small messages so the transaction spans many chunks, and small statements so the slow row is applied
    // (not merely buffered) while later chunks are still to come.
    const p = await start("stall_slow_chunk", {
      ddl: "CREATE TABLE items (id integer PRIMARY KEY, label text NOT NULL);",
      captureArgs: ["--max-message-bytes", "4096", "--compression", "none"],
      applyArgs: ["--apply-max-rows-per-statement", "10"],
    });
    const standbyUrl = p.standby("s1").db.url;
    // 12 s on one row: past the applier's 10 s consumer session timeout.
    await runSql(
      standbyUrl,
      `CREATE FUNCTION slow_row() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN
         IF NEW.id = 30 THEN PERFORM pg_sleep(12); END IF;
         RETURN NEW;
       END $$;
       CREATE TRIGGER slow_row BEFORE INSERT ON items FOR EACH ROW EXECUTE FUNCTION slow_row();
       ALTER TABLE items ENABLE ALWAYS TRIGGER slow_row;`,
    );
    await runSql(
      p.source.url,
      "INSERT INTO items SELECT g, (SELECT string_agg(md5(g::text || '.' || k::text), '') FROM generate_series(1, 6) k) FROM generate_series(1, 400) g",
    );
    const { rows } = await runSql<{ n: string }>(p.source.url, "SELECT count(*)::text AS n FROM items");
    expect(rows[0]?.n).toBe("400");
    await p.waitForCatchUp(undefined, 120_000);
    expect((await standbyIds(standbyUrl)).length).toBe(400);
    const output = p.standby("s1").applier.output();
    expect(output, "no session ended and resumed").not.toMatch(/apply session ended|stalled:/);
  });
});
