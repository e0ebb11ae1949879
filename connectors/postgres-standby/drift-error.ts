import { formatLsn } from "../../src/change/lsn.js";
import { DiffrelayError } from "../../src/errors/diffrelay-error.js";

/** Where the change being applied came from: the source commit and its Kafka message. */
export interface SourcePosition {
  commitLsn: bigint;
  topic: string;
  partition: number;
  offset: string;
}

function describePosition(position: SourcePosition): string {
  return `source commit ${formatLsn(position.commitLsn)}, topic ${position.topic} partition ${position.partition} offset ${position.offset}`;
}

function describeKey(key: Readonly<Record<string, string | null>>): string {
  const names = Object.keys(key);
  const values = names.map((name) => {
    const value = key[name];
    return value === null || value === undefined ? "NULL" : JSON.stringify(value);
  });
  return `(${names.join(", ")})=(${values.join(", ")})`;
}

export type DriftReason = "row-missing" | "row-exists";

/**
 * The standby is not a copy of the source: a row the source changed or deleted
 * is not on the standby, or a row the source inserted already is.
 */
export class DriftError extends DiffrelayError {
  override readonly name = "DriftError";
  readonly reason: DriftReason;
  readonly change: "insert" | "update" | "delete";
  readonly schema: string;
  readonly table: string;
  /** The row's key as the source identified it: column name → text value. */
  readonly key: Readonly<Record<string, string | null>>;
  /** The source commit LSN in PostgreSQL's text form, `X/Y`. */
  readonly commitLsn: string;
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;
  /** Index of the change within the transaction's change list. */
  readonly changeIndex: number;

  constructor(fields: {
    reason: DriftReason;
    change: "insert" | "update" | "delete";
    schema: string;
    table: string;
    key: Readonly<Record<string, string | null>>;
    changeIndex: number;
    position: SourcePosition;
  }) {
    const what =
      fields.reason === "row-exists"
        ? `a row with key ${describeKey(fields.key)} already exists, so the source's insert cannot be applied`
        : `no row with key ${describeKey(fields.key)} to ${fields.change}`;
    super(
      "drift",
      `drift on ${JSON.stringify(fields.schema)}.${JSON.stringify(fields.table)}: ${what} (change #${fields.changeIndex}, ${describePosition(fields.position)}); the standby is not a copy of the source`,
    );
    this.reason = fields.reason;
    this.change = fields.change;
    this.schema = fields.schema;
    this.table = fields.table;
    this.key = fields.key;
    this.changeIndex = fields.changeIndex;
    this.commitLsn = formatLsn(fields.position.commitLsn);
    this.topic = fields.position.topic;
    this.partition = fields.position.partition;
    this.offset = fields.position.offset;
  }
}

/**
 * The standby's table definition cannot hold what the source sends: the table
 * or a column is missing, or the key differs. The standby is not a copy.
 */
export class SchemaDriftError extends DiffrelayError {
  override readonly name = "SchemaDriftError";
  readonly schema: string;
  readonly table: string;
  readonly column: string | null;
  readonly problem: string;
  /** The source change that met the mismatch; null when found outside applying one. */
  readonly position: SourcePosition | null;

  constructor(fields: {
    schema: string;
    table: string;
    column: string | null;
    problem: string;
    position?: SourcePosition;
  }) {
    const where =
      fields.column === null
        ? `${JSON.stringify(fields.schema)}.${JSON.stringify(fields.table)}`
        : `${JSON.stringify(fields.schema)}.${JSON.stringify(fields.table)} column ${JSON.stringify(fields.column)}`;
    const at = fields.position === undefined ? "" : ` (${describePosition(fields.position)})`;
    super(
      "drift",
      `schema drift on the standby, ${where}: ${fields.problem}; the standby is not a copy of the source${at}`,
    );
    this.schema = fields.schema;
    this.table = fields.table;
    this.column = fields.column;
    this.problem = fields.problem;
    this.position = fields.position ?? null;
  }

  /** The same mismatch, located at the source change that met it. */
  at(position: SourcePosition): SchemaDriftError {
    const { schema, table, column, problem } = this;
    return new SchemaDriftError({ schema, table, column, problem, position });
  }
}

/**
 * Applying a change failed for a reason other than row drift: the standby
 * rejected a value, a schema mismatch, a constraint. `cause` holds the original
 * error (a pg DatabaseError carries SQLSTATE, detail, constraint).
 */
export class ApplyError extends DiffrelayError {
  override readonly name = "ApplyError";
  readonly schema: string | null;
  readonly table: string | null;
  readonly column: string | null;
  /** SQLSTATE when the standby raised the error. */
  readonly code: string | null;
  readonly commitLsn: string;
  readonly topic: string;
  readonly partition: number;
  readonly offset: string;

  constructor(fields: {
    schema: string | null;
    table: string | null;
    column: string | null;
    code: string | null;
    problem: string;
    position: SourcePosition;
    cause: unknown;
  }) {
    const table =
      fields.schema === null || fields.table === null
        ? ""
        : ` on ${JSON.stringify(fields.schema)}.${JSON.stringify(fields.table)}`;
    const column = fields.column === null ? "" : ` column ${JSON.stringify(fields.column)}`;
    const code = fields.code === null ? "" : ` [SQLSTATE ${fields.code}]`;
    super(
      "drift",
      `apply failed${table}${column}: ${fields.problem}${code} (${describePosition(fields.position)})`,
      {
        cause: fields.cause,
      },
    );
    this.schema = fields.schema;
    this.table = fields.table;
    this.column = fields.column;
    this.code = fields.code;
    this.commitLsn = formatLsn(fields.position.commitLsn);
    this.topic = fields.position.topic;
    this.partition = fields.position.partition;
    this.offset = fields.position.offset;
  }
}
