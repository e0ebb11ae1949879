/**
 * How a captured DDL command must be replayed on a standby for the result to
 * be the source's. Most commands run inside the group's standby transaction,
 * atomically with the position. The exceptions:
 *
 * - `ALTER TYPE … ADD VALUE`: the new value is unusable until its transaction
 *   commits ("unsafe use of new value"), so the group commits right after the
 *   source transaction that added it, before a later one can use it.
 * - `CREATE INDEX CONCURRENTLY`: replayed as a plain `CREATE INDEX` inside the
 *   group. On a standby the applier is the only writer and waits for either
 *   form to finish; the plain form builds faster, takes a SHARE lock that lets
 *   the standby's readers go on, picks the same name for an unnamed index, and
 *   commits with the position, so a crash can neither leave an INVALID index
 *   nor build it twice.
 * - `DROP INDEX CONCURRENTLY`, `ALTER TABLE … DETACH PARTITION … CONCURRENTLY`
 *   and `REINDEX … CONCURRENTLY`: their plain forms hold ACCESS EXCLUSIVE locks
 *   that would stall the standby's readers, so they run outside a transaction
 *   block, alone, after the group before them commits; the position is written
 *   right after. A crash in between replays them, so each replay is made safe
 *   to repeat: `DROP INDEX CONCURRENTLY IF EXISTS`; a detach first looks at
 *   pg_inherits (already detached: nothing to do; left pending by an
 *   interrupted detach: `FINALIZE`); a reindex is repeatable as it is.
 */
export type DdlReplay =
  | { kind: "in-group"; sql: string }
  | { kind: "commit-after"; sql: string }
  | { kind: "alone"; sql: string; detach: { parent: string; partition: string } | null };

interface Token {
  /** Upper-cased keyword, or the identifier as written (quotes kept). */
  text: string;
  start: number;
  end: number;
}

/** Words, quoted identifiers and single punctuation characters; comments and string literals are skipped over. */
function tokens(sql: string, limit: number): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < sql.length && out.length < limit) {
    const c = sql[i] as string;
    if (/\s/.test(c)) {
      i += 1;
    } else if (sql.startsWith("--", i)) {
      const end = sql.indexOf("\n", i);
      i = end < 0 ? sql.length : end + 1;
    } else if (sql.startsWith("/*", i)) {
      const end = sql.indexOf("*/", i + 2);
      i = end < 0 ? sql.length : end + 2;
    } else if (c === '"') {
      let j = i + 1;
      for (;;) {
        const close = sql.indexOf('"', j);
        if (close < 0) {
          j = sql.length;
          break;
        }
        if (sql[close + 1] === '"') {
          j = close + 2;
          continue;
        }
        j = close + 1;
        break;
      }
      out.push({ text: sql.slice(i, j), start: i, end: j });
      i = j;
    } else if (/[A-Za-z_0-9$\u0080-\uffff]/.test(c)) {
      let j = i + 1;
      while (j < sql.length && /[A-Za-z_0-9$\u0080-\uffff]/.test(sql[j] as string)) j += 1;
      out.push({ text: sql.slice(i, j).toUpperCase(), start: i, end: j });
      i = j;
    } else {
      out.push({ text: c, start: i, end: i + 1 });
      i += 1;
    }
  }
  return out;
}

/** A possibly schema-qualified name starting at tokens[at], as written in the command. */
function qualifiedName(sql: string, list: Token[], at: number): { text: string; next: number } | null {
  const first = list[at];
  if (first === undefined) return null;
  let end = first.end;
  let next = at + 1;
  while (list[next]?.text === "." && list[next + 1] !== undefined) {
    end = (list[next + 1] as Token).end;
    next += 2;
  }
  return { text: sql.slice(first.start, end), next };
}

/** One statement: a query string holding several is replayed as the source ran it, whole and in the group. */
function singleStatement(sql: string): boolean {
  const list = tokens(sql, Number.POSITIVE_INFINITY);
  const semicolon = list.findIndex((t) => t.text === ";");
  return semicolon < 0 || semicolon === list.length - 1;
}

export function ddlReplay(command: string): DdlReplay {
  const head = tokens(command, 12);
  const words = head.map((t) => t.text);
  const at = (i: number) => words[i] ?? "";
  if (at(0) === "ALTER" && at(1) === "TYPE" && /\bADD\s+VALUE\b/i.test(command))
    return { kind: "commit-after", sql: command };
  if (!singleStatement(command)) return { kind: "in-group", sql: command };
  if (at(0) === "CREATE") {
    const concurrently = at(1) === "UNIQUE" ? 3 : 2;
    if (at(concurrently - 1) === "INDEX" && at(concurrently) === "CONCURRENTLY") {
      const token = head[concurrently] as Token;
      return { kind: "in-group", sql: command.slice(0, token.start) + command.slice(token.end) };
    }
  }
  if (at(0) === "DROP" && at(1) === "INDEX" && at(2) === "CONCURRENTLY") {
    if (at(3) === "IF" && at(4) === "EXISTS") return { kind: "alone", sql: command, detach: null };
    const token = head[2] as Token;
    const sql = `${command.slice(0, token.end)} IF EXISTS${command.slice(token.end)}`;
    return { kind: "alone", sql, detach: null };
  }
  if (at(0) === "REINDEX" && words.includes("CONCURRENTLY"))
    return { kind: "alone", sql: command, detach: null };
  if (at(0) === "ALTER" && at(1) === "TABLE" && /\bDETACH\s+PARTITION\b/i.test(command)) {
    const list = tokens(command, Number.POSITIVE_INFINITY);
    let i = 2;
    if (list[i]?.text === "IF" && list[i + 1]?.text === "EXISTS") i += 2;
    if (list[i]?.text === "ONLY") i += 1;
    const parent = qualifiedName(command, list, i);
    if (parent && list[parent.next]?.text === "DETACH" && list[parent.next + 1]?.text === "PARTITION") {
      const partition = qualifiedName(command, list, parent.next + 2);
      const last = list.filter((t) => t.text !== ";").at(-1);
      if (partition && last?.text === "CONCURRENTLY") {
        return { kind: "alone", sql: command, detach: { parent: parent.text, partition: partition.text } };
      }
    }
  }
  return { kind: "in-group", sql: command };
}
