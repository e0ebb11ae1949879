// A write load for HA tests that logs every acknowledged id: writers follow whichever node's /primary
// answers 200 and commit one id per transaction, into a keyed table and a key-less one in one statement (a
// row applied twice or half a transaction shows on the key-less one). An id is acknowledged when its INSERT
// answered, and logged with the node it went to and the time; one whose answer never came (the session
// ended under it) is unanswered and may or may not be committed; one refused by the server (read-only) is
// not committed. Ids are never reused: writer w of n writes w, w + n, w + 2n, …
import pg from "pg";

export const ACK_LOAD_DDL = `
CREATE TABLE acked_ids (id bigint PRIMARY KEY, writer integer NOT NULL, node text NOT NULL);
CREATE TABLE acked_events (id bigint NOT NULL, writer integer NOT NULL);
`;
export const ACK_LOAD_TABLES = ["public.acked_ids", "public.acked_events"];

export interface AcknowledgedId {
  id: number;
  writer: number;
  /** The node whose /primary answered 200 when the writer connected. */
  node: string;
  /** When the INSERT answered (ISO). */
  at: string;
  /** A server warning sent with the answer (e.g. a synchronous-replication wait cancelled). */
  warning?: string;
}

export interface UnansweredId {
  id: number;
  writer: number;
  node: string;
  at: string;
  error: string;
}

export interface PrimaryRoute {
  /** The node whose /primary answers 200 now, if any. */
  primary(): Promise<{ name: string; databaseUrl: string } | null>;
}

interface InFlight {
  id: number;
  node: string;
  since: number;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// A statement that fails with one of these never committed: the server refused it before any change.
const REFUSED = new Set(["25006"]);

export class AcknowledgedIdLoad {
  readonly acknowledged: AcknowledgedId[] = [];
  readonly unanswered: UnansweredId[] = [];
  /** Ids a server refused (read-only): never committed. */
  readonly refused: number[] = [];
  /** Failures that are none of the above: each one is a defect to look at. */
  readonly errors: string[] = [];
  private stopping = false;
  private paused = false;
  private readonly inFlight = new Map<number, InFlight | null>();
  private readonly idle = new Set<number>();
  private readonly running: Promise<void>[] = [];
  private resumed: () => void = () => undefined;
  private resumedAt: Promise<void> = Promise.resolve();

  constructor(
    private readonly route: PrimaryRoute,
    private readonly writers = 4,
    private readonly pauseMs = 10,
  ) {}

  start(): void {
    for (let w = 1; w <= this.writers; w++) this.running.push(this.run(w));
  }

  /** Every id whose INSERT answered, as a set. */
  acknowledgedIds(): Set<number> {
    return new Set(this.acknowledged.map((a) => a.id));
  }

  /**
   * Holds every writer before its next INSERT and resolves once none is in flight, so that the tables hold
   * still for a comparison. Throws, naming the writer, its node and id, if one stays in flight.
   */
  async pause(timeoutMs = 60_000): Promise<void> {
    this.paused = true;
    this.resumedAt = new Promise((r) => {
      this.resumed = r;
    });
    const deadline = Date.now() + timeoutMs;
    while (this.idle.size < this.writers) {
      if (Date.now() > deadline) {
        const stuck = [...this.inFlight]
          .filter(([w]) => !this.idle.has(w))
          .map(([w, f]) =>
            f
              ? `writer ${w}: INSERT of id ${f.id} on ${f.node} unanswered for ${Date.now() - f.since} ms`
              : `writer ${w}: looking for the primary`,
          );
        throw new Error(`the write load did not pause within ${timeoutMs} ms: ${stuck.join("; ")}`);
      }
      await sleep(20);
    }
  }

  resume(): void {
    this.paused = false;
    this.resumed();
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.resume();
    await Promise.all(this.running);
  }

  private async run(writer: number): Promise<void> {
    let next = writer;
    const take = () => {
      const id = next;
      next += this.writers;
      return id;
    };
    while (!this.stopping) {
      if (this.paused) {
        this.idle.add(writer);
        await this.resumedAt;
        this.idle.delete(writer);
        continue;
      }
      this.inFlight.set(writer, null);
      const primary = await this.route.primary();
      if (!primary) {
        await sleep(50);
        continue;
      }
      const client = new pg.Client({ connectionString: primary.databaseUrl, connectionTimeoutMillis: 2000 });
      client.on("error", () => undefined);
      let warning: string | undefined;
      client.on("notice", (n) => {
        warning = n.message;
      });
      try {
        await client.connect();
      } catch {
        await client.end().catch(() => undefined);
        await sleep(50);
        continue;
      }
      try {
        while (!this.stopping && !this.paused) {
          const id = take();
          warning = undefined;
          this.inFlight.set(writer, { id, node: primary.name, since: Date.now() });
          try {
            await client.query(
              "WITH row AS (INSERT INTO acked_ids (id, writer, node) VALUES ($1, $2, $3) RETURNING id) INSERT INTO acked_events SELECT id, $2 FROM row",
              [id, writer, primary.name],
            );
            this.acknowledged.push({
              id,
              writer,
              node: primary.name,
              at: new Date().toISOString(),
              ...(warning === undefined ? {} : { warning }),
            });
          } catch (err) {
            const e = err as { code?: string; message: string };
            if (e.code !== undefined && REFUSED.has(e.code)) this.refused.push(id);
            else {
              // The session ended under the INSERT (fence, server killed): it may have committed.
              this.unanswered.push({
                id,
                writer,
                node: primary.name,
                at: new Date().toISOString(),
                error: `${e.code ?? "no SQLSTATE"}: ${e.message}`,
              });
              // A socket error (ECONNRESET, EPIPE: the server killed) is not the server's, whatever its code.
              const sqlState = err instanceof pg.DatabaseError;
              if (sqlState && !e.code?.startsWith("57") && !e.code?.startsWith("08"))
                this.errors.push(`writer ${writer} id ${id} on ${primary.name}: ${e.code} ${e.message}`);
            }
            break;
          }
          if (this.pauseMs > 0) await sleep(this.pauseMs);
        }
      } finally {
        this.inFlight.set(writer, null);
        await client.end().catch(() => undefined);
      }
    }
    this.idle.add(writer);
  }
}
