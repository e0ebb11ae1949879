import type { Socket } from "node:net";
import type pg from "pg";

/**
 * Several statements in one round trip, over the extended query protocol:
 * Parse (once per named statement and connection), Bind and Execute for each,
 * then a single Sync. The server runs them in order; after an error it skips
 * the rest up to the Sync. pg has no pipelining of its own, but it hands any
 * "submittable" the protocol messages of its turn (as src/sql/copy-protocol.ts
 * does for COPY).
 */

export interface PipelinedStatement {
  text: string;
  /** A prepared statement's name: parsed once per connection, bound on every later use. */
  name?: string;
  /** Text parameters; an array goes as a PostgreSQL array literal (as pg would send it). */
  values: readonly (string | null | readonly (string | null)[])[];
}

export interface PipelineOutcome {
  /** The row count of each statement that completed, in order (null for commands without one). */
  rowCounts: (number | null)[];
  /** What stopped statement number rowCounts.length; the statements after it did not run. */
  error: Error | null;
}

/** The internal pg Connection fields the pipeline needs (present in pg 8). */
interface PipelineConnection extends pg.Connection {
  readonly stream: Socket;
  parsedStatements: Record<string, string>;
}

function rowCountOf(commandTag: string): number | null {
  // "INSERT 0 3", "UPDATE 3", "DELETE 3", "SELECT 1", "COPY 3"; "BEGIN", "SAVEPOINT" have none.
  const match = / (\d+)$/.exec(commandTag);
  return match ? Number(match[1]) : null;
}

const ARRAY_ELEMENT_SPECIALS = /[\\"]/g;

/**
 * Each element quoted, a backslash or double quote in it escaped. Built by
 * appending, and escaped only where needed: a batched statement's arrays hold
 * thousands of values, and a map, two replaceAll and a join cost 3-4x as much.
 */
function arrayLiteral(items: readonly (string | null)[]): string {
  let literal = "{";
  for (let i = 0; i < items.length; i++) {
    const item = items[i] as string | null;
    if (i > 0) literal += ",";
    if (item === null) literal += "NULL";
    else if (item.includes("\\") || item.includes('"'))
      literal += `"${item.replace(ARRAY_ELEMENT_SPECIALS, "\\$&")}"`;
    else literal += `"${item}"`;
  }
  return `${literal}}`;
}

class PipelinedQuery {
  /** What pg's query hooks (and a reader of them) see: the statements, in order. */
  readonly text: string;
  private readonly rowCounts: (number | null)[] = [];
  private settle!: (outcome: PipelineOutcome) => void;
  readonly done: Promise<PipelineOutcome>;
  /** Statements sent for parsing, in order (name "" for the unnamed one), and how many the server parsed. */
  private readonly parsing: { name: string; text: string }[] = [];
  private parsed = 0;
  private connection: PipelineConnection | null = null;
  private readonly onParseComplete = () => {
    const statement = this.parsing[this.parsed++];
    // Only a named statement outlives its turn; the unnamed one is replaced by the next Parse.
    if (statement?.name && this.connection) this.connection.parsedStatements[statement.name] = statement.text;
  };

  constructor(private readonly statements: readonly PipelinedStatement[]) {
    this.text = statements.map((s) => s.text).join("; ");
    this.done = new Promise((resolve) => {
      this.settle = resolve;
    });
  }

  submit(connection: pg.Connection): void {
    const c = connection as unknown as PipelineConnection;
    this.connection = c;
    c.on("parseComplete", this.onParseComplete);
    // One write for the whole pipeline instead of one per message.
    c.stream.cork();
    try {
      for (const statement of this.statements) {
        // A name repeated within the run is parsed by its first use.
        const known =
          statement.name !== undefined &&
          (c.parsedStatements[statement.name] !== undefined ||
            this.parsing.some((parsing) => parsing.name === statement.name));
        if (!known) {
          c.parse({ text: statement.text, name: statement.name ?? "", types: [] }, false);
          this.parsing.push({ name: statement.name ?? "", text: statement.text });
        }
        const values = statement.values.map((v) =>
          Array.isArray(v) ? arrayLiteral(v) : (v as string | null),
        );
        c.bind({ statement: statement.name ?? "", values }, false);
        c.execute({}, false);
      }
      c.sync();
    } finally {
      c.stream.uncork();
    }
  }

  handleCommandComplete(message: { text: string }): void {
    this.rowCounts.push(rowCountOf(message.text));
  }

  handleReadyForQuery(): void {
    this.finish(null);
  }

  handleError(err: Error): void {
    // pg forgets the query on an error; the ReadyForQuery that follows a server error is not ours.
    this.finish(err);
  }

  private finish(error: Error | null): void {
    this.connection?.off("parseComplete", this.onParseComplete);
    this.settle({ rowCounts: this.rowCounts, error });
  }

  handleCopyInResponse(connection: pg.Connection): void {
    (connection as pg.Connection & { sendCopyFail(message: string): void }).sendCopyFail(
      "diffrelay does not pipeline COPY FROM STDIN",
    );
  }

  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(): void {}
}

/**
 * Sends `statements` in one round trip and resolves with how far they got:
 * it never rejects, an error (the server's, or the socket's) is in the outcome.
 */
export function runPipelined(
  client: pg.ClientBase,
  statements: readonly PipelinedStatement[],
): Promise<PipelineOutcome> {
  const query = new PipelinedQuery(statements);
  void client.query(query as unknown as pg.Submittable);
  return query.done;
}
