import { createHash } from "node:crypto";
import pg, { type ClientBase, type QueryResult } from "pg";
import type { ApplyChange, ColumnValue, DdlChange, SequencePosition } from "../../src/change/change-model.js";
import type { RelationSchema, SchemaRef } from "../../src/change/relation-schema.js";
import { copyIn } from "../../src/sql/copy-protocol.js";
import { type PipelinedStatement, runPipelined } from "../../src/sql/pipelined-query.js";
import { quoteQualified } from "../../src/sql/quote.js";
import type { ApplyMetrics } from "./apply-metrics.js";
import type { DeferredCommands } from "./deferred-commands.js";
import { ApplyError, DriftError, SchemaDriftError, type SourcePosition } from "./drift-error.js";
import { ddlReplay } from "./planning/ddl-replay.js";
import type { PlannedStatement, ResolvedRelation } from "./planning/planned-statement.js";
import { planChangeByChange, planStatements } from "./planning/statement-planner.js";
import { TableMappings } from "./planning/table-mapping.js";
import { type ColumnTypeDifference, columnTypeDifferences, StandbyCatalog } from "./standby-catalog.js";

export interface TransactionApplierOptions {
  /** The source's definition of a relation version (from the schema topic). */
  schemas: (ref: SchemaRef) => RelationSchema | Promise<RelationSchema>;
  /** Rows per batched statement; default 1000. */
  maxRowsPerStatement?: number;
  /** "stop" (default) throws DriftError; "log" counts it, reports it to onDriftLogged and goes on. */
  onDrift?: "stop" | "log";
  onDriftLogged?: (drift: DriftError) => void;
  /**
   * A published sequence the standby lacks (a hand-built standby, or one made
   * before the sequence existed) is skipped rather than stopping the applier:
   * a position is only needed at promote. Called once per sequence, with its
   * quoted name, so the caller can warn.
   */
  onSequenceMissing?: (qualifiedName: string) => void;
  /** Batch fallbacks are counted: a table where they happen often is worth a look (a UNIQUE value moved between rows). */
  metrics: Pick<ApplyMetrics, "batchFallbacks" | "groupRetries">;
}

const SAVEPOINT = "diffrelay_batch";
/** Taken before a pipelined run of statements that holds a batched one; rolled back to if the run went wrong. */
const PIPELINE_SAVEPOINT = "diffrelay_pipeline";

/**
 * SQLSTATE classes worth a retry on a new session (connection, transaction
 * rollback, resources, operator intervention, system): such errors are passed
 * through untouched, not turned into an ApplyError, which means "needs a person".
 * Not class 55 (object not in prerequisite state: "unsafe use of new value" of
 * an enum, an object in use): the same change in the same state fails again.
 * A transient one that keeps recurring at one position is reported stalled.
 */
const TRANSIENT_CLASSES = new Set(["08", "40", "53", "57", "58"]);

/**
 * Errors after which a batch is replayed change by change: integrity
 * violations (a UNIQUE or exclusion check can fail for a batch and not for the
 * source's order) and data exceptions (the replay names the change at fault).
 */
const REPLAY_CLASSES = new Set(["22", "23"]);

interface DatabaseErrorLike {
  code: string;
  message: string;
  detail?: string;
  schema?: string;
  table?: string;
  column?: string;
  constraint?: string;
}

/**
 * The server's error, or null for any other (a socket's, a client's). Not told by the shape of `code`:
 * Node's socket errors carry one too, and some (EPIPE, EBADF) look like a SQLSTATE.
 */
function databaseError(err: unknown): DatabaseErrorLike | null {
  return err instanceof pg.DatabaseError ? (err as pg.DatabaseError & DatabaseErrorLike) : null;
}

/**
 * Applies changes of source transactions to a standby inside the caller's
 * transaction: the caller begins, writes its position and commits, so the
 * data and the position commit together.
 */
export class TransactionApplier {
  /** Definitions of the standby's tables, read once and dropped whenever DDL may have changed them. */
  private readonly catalog = new StandbyCatalog();
  private readonly options: Required<Pick<TransactionApplierOptions, "maxRowsPerStatement" | "onDrift">> &
    TransactionApplierOptions;
  private readonly preparedSessions = new WeakSet<ClientBase>();
  private readonly statementNames = new Map<string, string>();
  private readonly tableMappings = new TableMappings();
  /** Sequences already reported missing: reported once per applier. */
  private readonly missingSequences = new Set<string>();
  /** Transaction id of the last applied DDL until it is known to have committed. */
  private ddlXid: string | null = null;

  constructor(options: TransactionApplierOptions) {
    this.options = { maxRowsPerStatement: 1000, onDrift: "stop", ...options };
  }

  /**
   * Session settings for applying; call once per connection, right after
   * connecting and outside a transaction (a rolled-back SET is undone).
   * As PostgreSQL's own subscriber does, triggers and foreign-key triggers do
   * not fire: the source already ran them and their effects arrive as changes.
   * The position commits with the data, so a commit lost in a crash is simply
   * applied again from Kafka: a synchronous flush buys nothing.
   */
  async prepareSession(client: ClientBase): Promise<void> {
    await client.query("SET session_replication_role = replica");
    await client.query("SET synchronous_commit = off");
    this.preparedSessions.add(client);
  }

  /**
   * Applies `changes` in order. `context` is the source position of every
   * change: one for all, or one per change when the list spans several
   * source transactions. Commands in `deferred` go out first, in the same
   * round trip as the statements; with it, the applier defers its own
   * savepoint releases there too (the caller's next exchange sends them).
   *
   * With `commit` (the position's upsert and COMMIT, position-store.ts), the
   * changes and the commit go in one round trip where they can: nothing of the
   * transaction has reached the standby yet (its BEGIN is still deferred), and
   * every statement runs pipelined with its row count checked by the standby
   * (migrations/standby/005_expect_rows.sql). Resolves true when the
   * transaction committed so; false when the changes are applied and the
   * caller still commits, as without `commit`.
   */
  async applyChanges(
    client: ClientBase,
    changes: ApplyChange[],
    context: SourcePosition | readonly SourcePosition[],
    deferred?: DeferredCommands,
    commit?: readonly PipelinedStatement[],
  ): Promise<boolean> {
    if (!this.preparedSessions.has(client)) {
      throw new Error(
        "TransactionApplier.prepareSession() must run on this connection before applyChanges()",
      );
    }
    const positions = context as SourcePosition | SourcePosition[];
    if (Array.isArray(positions) && positions.length !== changes.length) {
      throw new Error(`${changes.length} changes come with ${positions.length} positions`);
    }
    const positionOf = (index: number): SourcePosition =>
      Array.isArray(positions) ? (positions[index] as SourcePosition) : positions;
    if (changes.length === 0) return false;
    // The catalog reads below may go before a deferred BEGIN: they only read, and a DDL of the group
    // (which they would have to see) sends everything deferred before it runs.
    await this.refreshAfterDdl(client);
    const alone = commit !== undefined && deferred?.beginOnly && !changes.some((c) => c.kind === "ddl");
    if (alone) return this.applySegment(this.segment(client, deferred, changes, 0, positionOf), commit);
    let start = 0;
    while (start < changes.length) {
      let end = start;
      while (end < changes.length && changes[end]?.kind !== "ddl") end += 1;
      if (end > start)
        await this.applySegment(this.segment(client, deferred, changes.slice(start, end), start, positionOf));
      const ddl = changes[end];
      if (ddl === undefined) break;
      await sendDeferred(client, deferred ?? null);
      await this.applyDdl(client, ddl as DdlChange, positionOf(end));
      start = end + 1;
    }
    return false;
  }

  private segment(
    client: ClientBase,
    deferred: DeferredCommands | undefined,
    changes: ApplyChange[],
    base: number,
    positionOf: (index: number) => SourcePosition,
  ): Segment {
    return {
      client,
      deferred: deferred ?? null,
      changes,
      base,
      positionOf,
      resolved: new Map(),
      lastResolved: null,
    };
  }

  /** Resolves true only when `commit` was given and the segment committed with it. */
  private async applySegment(segment: Segment, commit?: readonly PipelinedStatement[]): Promise<boolean> {
    await this.resolveRelations(segment);
    await this.dropMissingSequences(segment);
    const statements = planStatements(segment.changes, (ref) => resolvedRelation(segment, ref), {
      maxRowsPerStatement: this.options.maxRowsPerStatement,
      mappings: this.tableMappings,
    });
    // COPY needs an exchange of its own (its data goes once the server asks for it).
    if (statements.some((statement) => statement.copyData !== undefined)) {
      await this.runInTurn(segment, statements);
      return false;
    }
    if (commit !== undefined && statements.every(checkable)) {
      if (await this.runAndCommit(segment, statements, commit)) return true;
    }
    await this.runPipelined(segment, statements);
    return false;
  }

  /**
   * BEGIN, the statements, each row count checked by the standby, and
   * `commit`, in one round trip. Should the standby refuse any of it (a
   * drift, a UNIQUE value moved between rows in a batch, any error), the
   * transaction is rolled back whole and false says so: nothing of it is
   * left, BEGIN is deferred again, and the caller applies the statements as
   * if this had not been tried, where each outcome is reported as always.
   */
  private async runAndCommit(
    segment: Segment,
    statements: PlannedStatement[],
    commit: readonly PipelinedStatement[],
  ): Promise<boolean> {
    const { client, deferred } = segment;
    const before = deferred?.take() ?? [];
    const outcome = await runPipelined(client, [
      ...before.map((text) => ({ text, values: [] })),
      ...statements.map((statement) => this.checked(statement)),
      ...commit,
    ]);
    if (outcome.error === null) return true;
    // Without an answer from the server it is unknown whether the COMMIT ran: a new session reads the position.
    if (databaseError(outcome.error) === null) throw outcome.error;
    await client.query("ROLLBACK");
    this.options.metrics.groupRetries.inc();
    for (const command of before) deferred?.add(command);
    return false;
  }

  /**
   * All of the segment's statements, with the deferred commands before them,
   * in one round trip. Exact statements alone are checked in order as if run
   * one by one (their outcomes do not depend on each other's row counts). With
   * a batched statement among them, the run goes under a savepoint: should any
   * statement fail or affect another number of rows than planned, the run is
   * rolled back to it and the statements run again one exchange at a time,
   * where a batch falls back to change by change and errors are reported as
   * they always were.
   */
  private async runPipelined(segment: Segment, statements: PlannedStatement[]): Promise<void> {
    const { client } = segment;
    if (statements.length === 0) return;
    const guarded = statements.some((statement) => statement.batched);
    const before = [
      ...(segment.deferred?.take() ?? []),
      ...(guarded ? [`SAVEPOINT ${PIPELINE_SAVEPOINT}`] : []),
    ];
    const outcome = await runPipelined(client, [
      ...before.map((text) => ({ text, values: [] })),
      ...statements.map((statement) => this.pipelined(statement)),
    ]);
    const counts = outcome.rowCounts.slice(before.length);
    if (outcome.rowCounts.length < before.length) throw outcome.error;
    if (!guarded) {
      for (const [index, statement] of statements.entries()) {
        const rowCount = counts[index];
        if (rowCount === undefined) throw this.wrap(segment, outcome.error, statement);
        this.checkRowCount(segment, statement, rowCount);
      }
      if (outcome.error !== null) throw outcome.error;
      return;
    }
    const asPlanned =
      outcome.error === null &&
      statements.every(
        (statement, index) => statement.expectedRows === null || counts[index] === statement.expectedRows,
      );
    if (asPlanned) {
      await release(client, segment.deferred, PIPELINE_SAVEPOINT);
      return;
    }
    // A lost connection leaves nothing to roll back to; a transient error is for a new session, as always.
    const db = outcome.error === null ? null : databaseError(outcome.error);
    if (outcome.error !== null && (db === null || TRANSIENT_CLASSES.has(db.code.slice(0, 2))))
      throw outcome.error;
    await client.query(
      `ROLLBACK TO SAVEPOINT ${PIPELINE_SAVEPOINT}; RELEASE SAVEPOINT ${PIPELINE_SAVEPOINT}`,
    );
    await this.runInTurn(segment, statements);
  }

  /**
   * The segment's statements one exchange at a time, each batch under its own
   * savepoint; commands deferred go out with the first exchange.
   */
  private async runInTurn(segment: Segment, statements: PlannedStatement[]): Promise<void> {
    let next = 0;
    while (next < statements.length) {
      const statement = statements[next] as PlannedStatement;
      if (!statement.batched) {
        await this.runExact(segment, statement);
        next += 1;
        continue;
      }
      let end = next + 1;
      while (
        end < statements.length &&
        statements[end]?.batched &&
        statements[end]?.group === statement.group
      ) {
        end += 1;
      }
      await this.runBatch(segment, statements.slice(next, end));
      next = end;
    }
  }

  /** Leaves out of the segment's sequence changes every sequence the standby does not have. */
  private async dropMissingSequences(segment: Segment): Promise<void> {
    // Indexed loops in these per-change passes: an entries() iterator inside an async function
    // allocated an iterator result and an [index, change] pair per change (a sixth of the
    // applier's allocations in the bulk bench).
    const { changes } = segment;
    for (let index = 0; index < changes.length; index++) {
      const change = changes[index] as ApplyChange;
      if (change.kind !== "sequence") continue;
      const present: SequencePosition[] = [];
      for (const position of change.sequences) {
        if (await this.catalog.hasSequence(segment.client, position.schema, position.name)) {
          present.push(position);
          continue;
        }
        const name = quoteQualified(position.schema, position.name);
        if (!this.missingSequences.has(name)) {
          this.missingSequences.add(name);
          this.options.onSequenceMissing?.(name);
        }
      }
      if (present.length < change.sequences.length)
        segment.changes[index] = { ...change, sequences: present };
    }
  }

  /** Loads every relation the segment touches before planning, which is synchronous. */
  private async resolveRelations(segment: Segment): Promise<void> {
    let previous: SchemaRef | null = null;
    const { changes } = segment;
    for (let index = 0; index < changes.length; index++) {
      const change = changes[index] as ApplyChange;
      if (change.kind === "insert" || change.kind === "update" || change.kind === "delete") {
        // A decoded message shares one ref object among its changes: most lookups end here.
        if (change.relation === previous) continue;
        previous = change.relation;
        await this.resolveRelation(segment, change.relation, index);
      } else if (change.kind === "truncate") {
        for (const ref of change.relations) await this.resolveRelation(segment, ref, index);
      }
    }
  }

  private async resolveRelation(segment: Segment, ref: SchemaRef, index: number): Promise<void> {
    const id = relationKey(ref);
    if (segment.resolved.has(id)) return;
    try {
      const source = await this.options.schemas(ref);
      const target = await this.catalog.loadTargetTable(segment.client, source.schema, source.table);
      // Mapping is the drift check: it fails here, before any statement of the segment runs.
      this.tableMappings.of(source, target);
      segment.resolved.set(id, { source, target });
    } catch (err) {
      if (err instanceof SchemaDriftError) throw err.at(segment.positionOf(segment.base + index));
      throw err;
    }
  }

  /**
   * Runs statements that apply several rows each under a savepoint. If one of
   * them fails for a reason that change-by-change application might not meet,
   * or affects another number of rows than planned, the group is undone and
   * its changes are applied one statement per change, in source order.
   */
  private async runBatch(segment: Segment, statements: PlannedStatement[]): Promise<void> {
    const { client } = segment;
    const indices = statements.flatMap((statement) => statement.description.changeIndices);
    // A batch of one change is what the fallback would run anyway: the savepoint's two round trips buy nothing.
    if (indices.length === 1) return this.runChangeByChange(segment, indices);
    // Commands the caller deferred (its BEGIN) go with the savepoint; its release is deferred in turn.
    const savepoint = `SAVEPOINT ${SAVEPOINT}`;
    await client.query(segment.deferred ? segment.deferred.prefix(savepoint) : savepoint);
    let replay = false;
    for (const statement of statements) {
      try {
        const result = await this.execute(client, statement);
        if (result.rowCount === statement.expectedRows) continue;
      } catch (err) {
        const db = databaseError(err);
        if (db === null || !REPLAY_CLASSES.has(db.code.slice(0, 2))) throw this.wrap(segment, err, statement);
      }
      replay = true;
      break;
    }
    if (!replay) {
      await release(client, segment.deferred, SAVEPOINT);
      return;
    }
    await client.query(`ROLLBACK TO SAVEPOINT ${SAVEPOINT}; RELEASE SAVEPOINT ${SAVEPOINT}`);
    this.options.metrics.batchFallbacks.inc();
    await this.runChangeByChange(segment, indices);
  }

  /** One statement per change, in source order, for the changes from the first to the last of `indices`. */
  private async runChangeByChange(segment: Segment, indices: number[]): Promise<void> {
    const first = Math.min(...indices);
    const last = Math.max(...indices);
    const exact = planChangeByChange(
      segment.changes.slice(first, last + 1),
      (ref) => resolvedRelation(segment, ref),
      this.tableMappings,
      first,
      0,
    );
    for (const statement of exact) await this.runExact(segment, statement);
  }

  private async runExact(segment: Segment, statement: PlannedStatement): Promise<void> {
    // A deferred BEGIN must reach the standby before the statement, or it would commit on its own.
    await sendDeferred(segment.client, segment.deferred);
    let result: Pick<QueryResult, "rowCount">;
    try {
      result = await this.execute(segment.client, statement);
    } catch (err) {
      throw this.wrap(segment, err, statement);
    }
    this.checkRowCount(segment, statement, result.rowCount);
  }

  /** Drift (or an error) when an exact statement affected another number of rows than planned. */
  private checkRowCount(segment: Segment, statement: PlannedStatement, rowCount: number | null): void {
    const { expectedRows, description } = statement;
    if (expectedRows === null || rowCount === expectedRows) return;
    const index = segment.base + (description.changeIndices[0] ?? 0);
    const table = description.tables[0];
    const kind = description.kind;
    if (
      expectedRows === 1 &&
      rowCount === 0 &&
      table !== undefined &&
      (kind === "insert" || kind === "update" || kind === "delete")
    ) {
      const key = description.keys[0] ?? [];
      const drift = new DriftError({
        reason: kind === "insert" ? "row-exists" : "row-missing",
        change: kind,
        schema: table.schema,
        table: table.table,
        key: Object.fromEntries(description.keyColumns.map((name, i) => [name, key[i] ?? null])),
        changeIndex: index,
        position: segment.positionOf(index),
      });
      if (this.options.onDrift === "stop") throw drift;
      this.options.onDriftLogged?.(drift);
      return;
    }
    throw new ApplyError({
      schema: table?.schema ?? null,
      table: table?.table ?? null,
      column: null,
      code: null,
      problem: `${kind} of change #${index} affected ${rowCount} rows, expected ${expectedRows}`,
      position: segment.positionOf(index),
      cause: null,
    });
  }

  /** Runs one statement, as a named prepared statement when its text repeats. */
  private async execute(
    client: ClientBase,
    statement: PlannedStatement,
  ): Promise<Pick<QueryResult, "rowCount">> {
    if (statement.copyData !== undefined)
      return { rowCount: await copyIn(client, statement.sql, statement.copyData) };
    const values: unknown[] = statement.params;
    if (!statement.prepare) {
      return values.length === 0 ? client.query(statement.sql) : client.query(statement.sql, values);
    }
    return client.query({ name: this.statementName(statement.sql), text: statement.sql, values });
  }

  /** A statement as a step of a pipelined run that the standby fails should its row count not be the planned one. */
  private checked(statement: PlannedStatement): PipelinedStatement {
    const { expectedRows } = statement;
    if (expectedRows === null) return this.pipelined(statement);
    const parameter = statement.params.length + 1;
    const text = `WITH diffrelay_applied AS (${statement.sql} RETURNING 1) SELECT diffrelay.expect_rows(pg_catalog.count(*), $${parameter}) FROM diffrelay_applied`;
    return { text, name: this.statementName(text), values: [...statement.params, String(expectedRows)] };
  }

  /** A statement as a step of a pipelined run (never COPY), prepared as execute() would. */
  private pipelined(statement: PlannedStatement): PipelinedStatement {
    const { sql, params } = statement;
    return statement.prepare
      ? { text: sql, name: this.statementName(sql), values: params }
      : { text: sql, values: params };
  }

  private statementName(sql: string): string {
    let name = this.statementNames.get(sql);
    if (name === undefined) {
      name = `diffrelay_${createHash("sha256").update(sql).digest("hex").slice(0, 32)}`;
      this.statementNames.set(sql, name);
    }
    return name;
  }

  /** Names the table, column (if the standby said), change and key of a statement the standby rejected. */
  private wrap(segment: Segment, err: unknown, statement: PlannedStatement): unknown {
    const db = databaseError(err);
    if (db === null || TRANSIENT_CLASSES.has(db.code.slice(0, 2))) return err;
    const { description } = statement;
    const index = segment.base + (description.changeIndices[0] ?? 0);
    const table = description.tables[0];
    const changes =
      description.changeIndices.length === 1
        ? `change #${index}${describeKey(description.keyColumns, description.keys[0])}`
        : `${description.changeIndices.length} changes from #${index}`;
    const constraint = db.constraint ? ` (constraint ${JSON.stringify(db.constraint)})` : "";
    // PostgreSQL does not name the column of a failed cast; a column whose type differs from the source's is the likely one.
    const differing = table ? typeDifferences(segment, table.schema, table.table) : [];
    const hint = differing.length
      ? `; columns whose standby type differs from the source's: ${differing.map((d) => `${d.column} (source ${d.source}, standby ${d.standby})`).join(", ")}`
      : "";
    return new ApplyError({
      schema: db.schema ?? table?.schema ?? null,
      table: db.table ?? table?.table ?? null,
      column: db.column ?? differing[0]?.column ?? null,
      code: db.code,
      problem: `${description.kind} of ${changes} was rejected: ${db.message}${db.detail ? `; ${db.detail}` : ""}${constraint}${hint}`,
      position: segment.positionOf(index),
      cause: err,
    });
  }

  /**
   * Table definitions read after a DDL command reflect it only if its
   * transaction commits; a rollback (of the caller's transaction or to a
   * savepoint) would leave them stale. Until the DDL is known committed,
   * definitions are read again on every call.
   */
  private async refreshAfterDdl(client: ClientBase): Promise<void> {
    if (this.ddlXid === null) return;
    const result = await client.query<{ status: string | null }>(
      "SELECT pg_catalog.txid_status($1::pg_catalog.int8) AS status",
      [this.ddlXid],
    );
    const status = result.rows[0]?.status ?? null;
    if (status !== "committed") this.catalog.invalidateAll();
    if (status !== "in progress") this.ddlXid = null;
  }

  private async applyDdl(client: ClientBase, change: DdlChange, position: SourcePosition): Promise<void> {
    try {
      const saved = await client.query<{ path: string }>(
        "SELECT pg_catalog.current_setting('search_path') AS path",
      );
      await client.query("SELECT pg_catalog.set_config('search_path', $1, true)", [change.searchPath]);
      // The command may hold several statements; only the simple protocol runs those.
      await client.query(ddlReplay(change.command).sql);
      await client.query("SELECT pg_catalog.set_config('search_path', $1, true)", [
        saved.rows[0]?.path ?? "",
      ]);
      const xid = await client.query<{ xid: string }>(
        "SELECT pg_catalog.txid_current()::pg_catalog.text AS xid",
      );
      this.ddlXid = xid.rows[0]?.xid ?? null;
    } catch (err) {
      throw ddlError(err, change, position);
    } finally {
      this.catalog.invalidateAll();
    }
  }

  /**
   * Runs a command that refuses a transaction block (planning/ddl-replay.ts),
   * on a connection with no transaction open: it commits by itself, so the
   * search_path is set for the session and put back after.
   */
  async applyOutsideTransaction(
    client: ClientBase,
    change: DdlChange,
    position: SourcePosition,
  ): Promise<void> {
    const replay = ddlReplay(change.command);
    const saved = await client.query<{ path: string }>(
      "SELECT pg_catalog.current_setting('search_path') AS path",
    );
    try {
      await client.query("SELECT pg_catalog.set_config('search_path', $1, false)", [change.searchPath]);
      const sql =
        replay.kind === "alone" && replay.detach ? await detachStep(client, replay.detach) : replay.sql;
      if (sql !== null) await client.query(sql);
    } catch (err) {
      throw ddlError(err, change, position);
    } finally {
      this.catalog.invalidateAll();
      await client.query("SELECT pg_catalog.set_config('search_path', $1, false)", [
        saved.rows[0]?.path ?? "",
      ]);
    }
  }
}

/**
 * What is left of `ALTER TABLE parent DETACH PARTITION part CONCURRENTLY` on
 * the standby: a replay after a crash may find it done (nothing to run) or
 * interrupted between its two transactions (detach pending: FINALIZE).
 */
async function detachStep(
  client: ClientBase,
  detach: { parent: string; partition: string },
): Promise<string | null> {
  const { rows } = await client.query<{ pending: boolean }>(
    `SELECT i.inhdetachpending AS pending FROM pg_catalog.pg_inherits AS i
      WHERE i.inhrelid = pg_catalog.to_regclass($1) AND i.inhparent = pg_catalog.to_regclass($2)`,
    [detach.partition, detach.parent],
  );
  const row = rows[0];
  if (row === undefined) return null;
  const finish = row.pending ? "FINALIZE" : "CONCURRENTLY";
  return `ALTER TABLE ${detach.parent} DETACH PARTITION ${detach.partition} ${finish}`;
}

/** A DDL command the standby refused: the applier stops (drift), naming the command and its source position. */
function ddlError(err: unknown, change: DdlChange, position: SourcePosition): unknown {
  const db = databaseError(err);
  if (db === null || TRANSIENT_CLASSES.has(db.code.slice(0, 2))) return err;
  const command = change.command.length > 200 ? `${change.command.slice(0, 200)}…` : change.command;
  return new ApplyError({
    schema: db.schema ?? null,
    table: db.table ?? null,
    column: db.column ?? null,
    code: db.code,
    problem: `DDL ${JSON.stringify(command)} failed: ${db.message}${db.detail ? ` (${db.detail})` : ""}; the standby's schema is not the source's at this point: re-seed this standby (diffrelay seed), or make the standby accept the command as the source did (undo a change made there by hand) and restart the applier`,
    position,
    cause: err,
  });
}

function describeKey(columns: string[], key: ColumnValue[] | undefined): string {
  if (key === undefined || columns.length === 0) return "";
  const values = key.map((value) => (value === null ? "NULL" : JSON.stringify(value)));
  return ` key (${columns.join(", ")})=(${values.join(", ")})`;
}

/** Commands deferred on the connection, sent now as an exchange of their own (before a COPY or a DDL). */
async function sendDeferred(client: ClientBase, deferred: DeferredCommands | null): Promise<void> {
  const commands = deferred?.take() ?? [];
  if (commands.length > 0) await client.query(commands.join("; "));
}

/** Releases a savepoint now, or with the caller's next exchange when it defers commands. */
async function release(
  client: ClientBase,
  deferred: DeferredCommands | null,
  savepoint: string,
): Promise<void> {
  if (deferred) deferred.add(`RELEASE SAVEPOINT ${savepoint}`);
  else await client.query(`RELEASE SAVEPOINT ${savepoint}`);
}

/**
 * Whether a statement can run with its row count checked by the standby: one
 * that counts no rows, or one that is not itself a WITH query (PostgreSQL
 * allows a data-modifying WITH only at the top level, and the check wraps the
 * statement in one).
 */
function checkable(statement: PlannedStatement): boolean {
  return statement.expectedRows === null || !statement.sql.startsWith("WITH ");
}

/** The changes between two DDL commands: planned together against the same definitions. */
interface Segment {
  client: ClientBase;
  /** Commands to send in front of the segment's first exchange, where the caller defers them. */
  deferred: DeferredCommands | null;
  changes: ApplyChange[];
  /** Index of changes[0] in the list given to applyChanges. */
  base: number;
  positionOf: (index: number) => SourcePosition;
  resolved: Map<string, ResolvedRelation>;
  /** The planner asks once per change, mostly for the ref it asked for last. */
  lastResolved: { ref: SchemaRef; relation: ResolvedRelation } | null;
}

/** Columns of one table whose type on the standby is not the source's (modifiers aside). */
function typeDifferences(segment: Segment, schema: string, table: string): ColumnTypeDifference[] {
  for (const { source, target } of segment.resolved.values()) {
    if (target.schema === schema && target.table === table) return columnTypeDifferences(source, target);
  }
  return [];
}

function relationKey(ref: SchemaRef): string {
  return `${ref.relationId}:${ref.version}`;
}

function resolvedRelation(segment: Segment, ref: SchemaRef): ResolvedRelation {
  if (segment.lastResolved?.ref === ref) return segment.lastResolved.relation;
  const found = segment.resolved.get(relationKey(ref));
  if (found === undefined)
    throw new Error(`relation ${ref.relationId} version ${ref.version} was not resolved`);
  segment.lastResolved = { ref, relation: found };
  return found;
}
