// A concurrent write load for fault tests that survives the source going away: each writer reconnects and
// goes on. Every attempt is a numbered transaction (writer, tx) that inserts 1–8 rows into a table without a
// primary key and bumps the writer's row in a keyed counter table. An attempt is counted as committed only
// when COMMIT answered; one whose COMMIT got no answer is ambiguous and is looked up on the source afterwards
// (settle()); one that failed before COMMIT never committed (PostgreSQL aborts it with its session).
import pg from "pg";

/** Tables the load writes; create them on the source and on every standby (the same DDL). */
export const WRITE_LOAD_DDL = `
CREATE TABLE load_events (writer integer NOT NULL, tx integer NOT NULL, n integer NOT NULL, payload text);
CREATE TABLE load_counters (writer integer PRIMARY KEY, txs bigint NOT NULL, rows bigint NOT NULL);
`;
export const WRITE_LOAD_TABLES = ["public.load_events", "public.load_counters"];

export interface WriteLoadResult {
  /** Transactions whose COMMIT answered. */
  committed: number;
  /** Ambiguous transactions (no answer to COMMIT) that turned out to be committed on the source. */
  ambiguousCommitted: number;
  /** Ambiguous transactions that turned out not to be committed. */
  ambiguousLost: number;
  /** Attempts that failed before COMMIT (never committed). */
  failedBeforeCommit: number;
  /** Rows the committed transactions inserted into load_events: what the source (and every standby) must hold. */
  expectedRows: number;
  /** Times a writer had to reconnect. */
  reconnects: number;
  /** Longest time a writer went without a connection, ms. */
  longestOutageMs: number;
}

interface Attempt {
  writer: number;
  tx: number;
  rows: number;
  state: "committed" | "ambiguous" | "failed";
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const randomBetween = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo));

export class WriteLoad {
  private stopping = false;
  private readonly attempts: Attempt[] = [];
  private readonly writers: Promise<void>[] = [];
  private reconnects = 0;
  private longestOutageMs = 0;
  private error: unknown;

  /**
   * @param url the source database (direct, not through a fault proxy)
   * @param maxOutageMs a writer that cannot reconnect for this long fails the load
   */
  constructor(
    private readonly url: string,
    private readonly writerCount = 3,
    private readonly maxOutageMs = 120_000,
  ) {}

  /** Creates the counter rows (the tables must exist) and starts the writers. */
  async start(): Promise<void> {
    const client = new pg.Client({ connectionString: this.url });
    await client.connect();
    try {
      await client.query(
        "INSERT INTO load_counters SELECT g, 0, 0 FROM generate_series(1, $1) g ON CONFLICT DO NOTHING",
        [this.writerCount],
      );
    } finally {
      await client.end();
    }
    for (let w = 1; w <= this.writerCount; w++) {
      this.writers.push(
        this.runWriter(w).catch((err) => {
          this.error ??= err;
        }),
      );
    }
  }

  /** Transactions whose COMMIT answered so far. */
  get committed(): number {
    let n = 0;
    for (const a of this.attempts) if (a.state === "committed") n++;
    return n;
  }

  /** Throws if a writer gave up. */
  assertHealthy(): void {
    if (this.error !== undefined) throw this.error;
  }

  /** Resolves once at least `n` more transactions committed (the load is alive), or throws at the deadline. */
  async waitForCommits(n: number, timeoutMs = 60_000): Promise<void> {
    const target = this.committed + n;
    const deadline = Date.now() + timeoutMs;
    while (this.committed < target) {
      this.assertHealthy();
      if (Date.now() > deadline) {
        throw new Error(
          `write load committed ${this.committed} of ${target} transactions in ${timeoutMs} ms`,
        );
      }
      await sleep(20);
    }
  }

  /** Stops the writers, then looks every ambiguous transaction up on the source. */
  async stop(): Promise<WriteLoadResult> {
    this.stopping = true;
    await Promise.all(this.writers);
    this.assertHealthy();
    return this.settle();
  }

  private async settle(): Promise<WriteLoadResult> {
    const client = new pg.Client({ connectionString: this.url });
    await client.connect();
    try {
      const { rows } = await client.query<{ writer: number; tx: number }>(
        "SELECT DISTINCT writer, tx FROM load_events",
      );
      const present = new Set(rows.map((r) => `${r.writer}/${r.tx}`));
      const result: WriteLoadResult = {
        committed: 0,
        ambiguousCommitted: 0,
        ambiguousLost: 0,
        failedBeforeCommit: 0,
        expectedRows: 0,
        reconnects: this.reconnects,
        longestOutageMs: this.longestOutageMs,
      };
      for (const a of this.attempts) {
        const there = present.has(`${a.writer}/${a.tx}`);
        if (a.state === "committed") {
          if (!there)
            throw new Error(`transaction ${a.writer}/${a.tx} answered COMMIT but is not on the source`);
          result.committed++;
        } else if (a.state === "ambiguous") {
          if (there) result.ambiguousCommitted++;
          else result.ambiguousLost++;
        } else {
          if (there)
            throw new Error(`transaction ${a.writer}/${a.tx} failed before COMMIT but is on the source`);
          result.failedBeforeCommit++;
        }
        if (there) result.expectedRows += a.rows;
      }
      const made = new Set(
        this.attempts.filter((a) => a.state !== "failed").map((a) => `${a.writer}/${a.tx}`),
      );
      const stray = [...present].filter((k) => !made.has(k));
      if (stray.length)
        throw new Error(`the source holds transactions the load never made: ${stray.join(", ")}`);
      // The keyed counters were bumped in the same transactions: they must agree with the PK-less rows.
      const totals = await client.query<{ txs: string; rows: string; events: string }>(
        `SELECT (SELECT sum(txs) FROM load_counters)::text AS txs, (SELECT sum(rows) FROM load_counters)::text AS rows,
                (SELECT count(*) FROM load_events)::text AS events`,
      );
      const t = totals.rows[0];
      const expected = {
        txs: String(result.committed + result.ambiguousCommitted),
        rows: String(result.expectedRows),
        events: String(result.expectedRows),
      };
      if (JSON.stringify(t) !== JSON.stringify(expected)) {
        throw new Error(
          `source totals ${JSON.stringify(t)} differ from the load's own ${JSON.stringify(expected)}`,
        );
      }
      return result;
    } finally {
      await client.end();
    }
  }

  private async connect(): Promise<pg.Client> {
    const lostAt = Date.now();
    for (let attempt = 0; ; attempt++) {
      const client = new pg.Client({ connectionString: this.url, connectionTimeoutMillis: 3_000 });
      client.on("error", () => undefined);
      try {
        await client.connect();
        // The stack runs with synchronous_commit=off, where an answered COMMIT can vanish in an immediate
        // shutdown; on for the load, so "answered" means "durable" and the count is exact.
        await client.query("SET synchronous_commit = on");
        this.longestOutageMs = Math.max(this.longestOutageMs, Date.now() - lostAt);
        return client;
      } catch (err) {
        await client.end().catch(() => undefined);
        if (Date.now() - lostAt > this.maxOutageMs) {
          throw new Error(`write load could not reconnect for ${this.maxOutageMs} ms: ${String(err)}`);
        }
        await sleep(Math.min(100 * 2 ** attempt, 1_000));
      }
    }
  }

  private async runWriter(writer: number): Promise<void> {
    let client: pg.Client | null = await this.connect();
    let tx = 0;
    try {
      while (!this.stopping) {
        if (!client) {
          this.reconnects++;
          client = await this.connect();
        }
        const attempt: Attempt = { writer, tx: ++tx, rows: randomBetween(1, 9), state: "failed" };
        this.attempts.push(attempt);
        let commitSent = false;
        try {
          await client.query("BEGIN");
          await client.query(
            "INSERT INTO load_events SELECT $1, $2, g, md5(random()::text) FROM generate_series(1, $3) g",
            [writer, attempt.tx, attempt.rows],
          );
          await client.query("UPDATE load_counters SET txs = txs + 1, rows = rows + $2 WHERE writer = $1", [
            writer,
            attempt.rows,
          ]);
          commitSent = true;
          const res = await client.query("COMMIT");
          // COMMIT of an aborted transaction answers ROLLBACK: nothing committed.
          attempt.state = res.command === "COMMIT" ? "committed" : "failed";
        } catch {
          attempt.state = commitSent ? "ambiguous" : "failed";
          const dead = client;
          client = null;
          await dead.end().catch(() => undefined);
        }
        await sleep(randomBetween(3, 15));
      }
    } finally {
      await client?.end().catch(() => undefined);
    }
  }
}
