// Acceptance: "readers never see half a transaction". Concurrent money transfers on the source keep the
// total balance and the number of accounts constant in every committed state; readers on the standbys,
// in their own short transactions, must only ever see that total and that count while the appliers run.
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ReplicationPipeline } from "../support/replication-pipeline.js";
import { runSql, testServices } from "../support/services.js";
import { compareTables, describeDifferences } from "../support/table-compare.js";

const ACCOUNTS = 100;
const OPENING_BALANCE = 1000;
const TOTAL = ACCOUNTS * OPENING_BALANCE;
const WORKERS = 4;
const WORKLOAD_MS = 15_000;

const DDL = `CREATE TABLE accounts (id integer PRIMARY KEY, balance bigint NOT NULL, note text);`;

interface WorkloadStats {
  committed: number;
  aborted: number;
  byKind: Record<string, number>;
}

const randomInt = (n: number) => Math.floor(Math.random() * n);
const randomAccount = () => 1 + randomInt(ACCOUNTS);

/** Thrown to roll a transaction back when a concurrent reopen made an UPDATE miss its row. */
class RowMissed extends Error {}

/** An UPDATE that must touch exactly `expected` rows (READ COMMITTED skips a row deleted meanwhile). */
async function update(client: pg.Client, sql: string, params: unknown[], expected: number): Promise<void> {
  const { rowCount } = await client.query(sql, params);
  if (rowCount !== expected) throw new RowMissed(`${sql}: ${rowCount} rows, not ${expected}`);
}

/** One source transaction that moves money around; the sum and the count are the same after it. */
async function oneTransaction(client: pg.Client): Promise<string> {
  const roll = Math.random();
  if (roll < 0.85) {
    const a = randomAccount();
    let b = randomAccount();
    while (b === a) b = randomAccount();
    const amount = 1 + randomInt(50);
    // Ascending id order: two transfers never wait on each other in a cycle.
    const [first, second] = a < b ? [a, -amount] : [b, amount];
    const [third, fourth] = a < b ? [b, amount] : [a, -amount];
    await client.query("BEGIN");
    await update(client, "UPDATE accounts SET balance = balance + $2 WHERE id = $1", [first, second], 1);
    await update(client, "UPDATE accounts SET balance = balance + $2 WHERE id = $1", [third, fourth], 1);
    await client.query("COMMIT");
    return "transfer";
  }
  if (roll < 0.93) {
    // Many rows in one transaction: 1 from each of k accounts to one other account.
    const target = randomAccount();
    const from = new Set<number>();
    const k = 5 + randomInt(20);
    while (from.size < k) {
      const id = randomAccount();
      if (id !== target) from.add(id);
    }
    await client.query("BEGIN");
    await update(
      client,
      "UPDATE accounts SET balance = balance - 1 WHERE id = ANY($1::int[])",
      [[...from]],
      from.size,
    );
    await update(client, "UPDATE accounts SET balance = balance + $2 WHERE id = $1", [target, from.size], 1);
    await client.query("COMMIT");
    return "multi-row";
  }
  if (roll < 0.98) {
    // Close and reopen an account in one transaction: a reader of half of it would count 99.
    const id = randomAccount();
    await client.query("BEGIN");
    const { rows } = await client.query<{ balance: string }>(
      "DELETE FROM accounts WHERE id = $1 RETURNING balance::text",
      [id],
    );
    if (rows.length !== 1) throw new RowMissed(`account ${id} was being reopened`);
    await client.query("INSERT INTO accounts VALUES ($1, $2, 'reopened')", [id, rows[0]?.balance]);
    await client.query("COMMIT");
    return "reopen";
  }
  // Every row at once, with enough bytes to be cut into several Kafka messages (chunks).
  const payer = randomAccount();
  await client.query("BEGIN");
  // A row being reopened concurrently is skipped (READ COMMITTED): the payer pays for the rows updated.
  const { rowCount } = await client.query(
    "UPDATE accounts SET balance = balance + 1, note = md5(random()::text) || md5(random()::text)",
  );
  await update(client, "UPDATE accounts SET balance = balance - $2 WHERE id = $1", [payer, rowCount], 1);
  await client.query("COMMIT");
  return "all-rows";
}

async function runWorker(url: string, until: number, stats: WorkloadStats): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  // An error surfaces through the pending query; the event alone must not crash the test worker.
  client.on("error", () => undefined);
  await client.connect();
  try {
    while (Date.now() < until) {
      try {
        const kind = await oneTransaction(client);
        stats.committed++;
        stats.byKind[kind] = (stats.byKind[kind] ?? 0) + 1;
      } catch (err) {
        // Deadlocks between multi-row transactions: the source rolls them back; nothing is published.
        // A row missed because of a concurrent reopen: this client rolls back.
        const code = (err as { code?: string }).code;
        if (!(err instanceof RowMissed) && code !== "40P01" && code !== "40001") throw err;
        await client.query("ROLLBACK");
        stats.aborted++;
      }
    }
  } finally {
    await client.end();
  }
}

interface ReaderStats {
  reads: number;
  violations: string[];
  positionsSeen: Set<string>;
}

async function runReader(url: string, stop: () => boolean, stats: ReaderStats): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  // An error surfaces through the pending query; the event alone must not crash the test worker.
  client.on("error", () => undefined);
  await client.connect();
  try {
    while (!stop()) {
      // One statement, so one short transaction and one snapshot; the position shows that applies
      // really happened in between reads.
      const { rows } = await client.query<{ total: string; n: string; pos: string | null }>(
        `SELECT sum(balance)::text AS total, count(*)::text AS n,
                (SELECT next_offset::text FROM diffrelay.apply_position LIMIT 1) AS pos
           FROM accounts`,
      );
      const row = rows[0];
      stats.reads++;
      if (row?.pos) stats.positionsSeen.add(row.pos);
      if (row?.total !== String(TOTAL) || row?.n !== String(ACCOUNTS)) {
        stats.violations.push(
          `read ${stats.reads}: sum ${row?.total}, count ${row?.n} at next_offset ${row?.pos}`,
        );
      }
    }
  } finally {
    await client.end();
  }
}

describe("apply: readers never see half a transaction", () => {
  let pipeline: ReplicationPipeline;

  beforeAll(async () => {
    const services = testServices();
    expect(services.standbyUrls.length).toBeGreaterThanOrEqual(2);
    pipeline = await ReplicationPipeline.start({
      sourceServerUrl: services.sourceUrl,
      standbys: [
        // s1 commits small groups (many standby commits, chunked transactions larger than a group);
        // s2 keeps the default grouping. Both must be atomic per source transaction.
        { name: "s1", serverUrl: services.standbyUrls[0] as string, applyArgs: ["--apply-max-rows", "20"] },
        { name: "s2", serverUrl: services.standbyUrls[1] as string },
      ],
      brokers: services.kafkaBrokers,
      prefix: "apply_atomic",
      ddl: DDL,
      // Small messages: the all-rows transactions arrive in several chunks.
      captureArgs: ["--max-message-bytes", "4096"],
    });
    await runSql(
      pipeline.source.url,
      `INSERT INTO accounts SELECT g, ${OPENING_BALANCE}, 'opened' FROM generate_series(1, ${ACCOUNTS}) g`,
    );
    await pipeline.waitForCatchUp();
  });

  afterAll(async () => {
    await pipeline?.stop();
  });

  it("keeps the total and the account count constant on both standbys under concurrent transfers", async () => {
    const workload: WorkloadStats = { committed: 0, aborted: 0, byKind: {} };
    const readers: Record<string, ReaderStats> = {};
    let workloadDone = false;
    const readerRuns = ["s1", "s2"].map((name) => {
      const stats: ReaderStats = { reads: 0, violations: [], positionsSeen: new Set() };
      readers[name] = stats;
      return runReader(pipeline.standby(name).db.url, () => workloadDone, stats);
    });
    const until = Date.now() + WORKLOAD_MS;
    try {
      await Promise.all(
        Array.from({ length: WORKERS }, () => runWorker(pipeline.source.url, until, workload)),
      );
      // Readers go on until both standbys have applied everything.
      await pipeline.waitForCatchUp();
    } finally {
      workloadDone = true;
      await Promise.all(readerRuns);
    }

    const summary = Object.fromEntries(
      Object.entries(readers).map(([name, r]) => [
        name,
        { reads: r.reads, violations: r.violations.length, positionsSeen: r.positionsSeen.size },
      ]),
    );
    console.log(`atomic reads: workload ${JSON.stringify(workload)}, readers ${JSON.stringify(summary)}`);

    const sourceTotals = await runSql<{ total: string; n: string }>(
      pipeline.source.url,
      "SELECT sum(balance)::text AS total, count(*)::text AS n FROM accounts",
    );
    expect(sourceTotals.rows[0]).toEqual({ total: String(TOTAL), n: String(ACCOUNTS) });
    expect(workload.committed).toBeGreaterThan(200);
    expect(workload.byKind["all-rows"] ?? 0).toBeGreaterThan(0);
    for (const [name, r] of Object.entries(readers)) {
      expect(r.violations.slice(0, 20), `standby ${name}`).toEqual([]);
      // The reads were interleaved with many applied standby transactions, not one static state.
      expect(r.reads, `standby ${name} reads`).toBeGreaterThan(200);
      expect(r.positionsSeen.size, `standby ${name} distinct positions read`).toBeGreaterThan(10);
      const comparison = await compareTables(pipeline.source.url, pipeline.standby(name).db.url, [
        "public.accounts",
      ]);
      expect(describeDifferences(comparison), `standby ${name}`).toEqual([]);
    }
  });
});
