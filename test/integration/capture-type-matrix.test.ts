// Acceptance: every change the source commits arrives on the data topic, decoded exactly, in commit order,
// each transaction whole. Real PostgreSQL, real Kafka, the real `diffrelay capture` process.
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Change, ColumnValue } from "../../src/change/change-model.js";
import { formatLsn, type Lsn, parseLsn } from "../../src/change/lsn.js";
import type { RelationSchema } from "../../src/change/relation-schema.js";
import { computeSourceId } from "../../src/wire/envelope.js";
import { startCapture, stopCapture } from "../support/capture-process.js";
import type { DiffrelayProcess } from "../support/child-process.js";
import { TYPE_MATRIX_CHANGES, TYPE_MATRIX_DDL, TYPE_MATRIX_ROWS } from "../support/schema-fixtures.js";
import {
  createTestDatabase,
  runSql,
  type TestDatabase,
  testServices,
  uniqueName,
} from "../support/services.js";
import {
  deleteTopics,
  readSchemaTopic,
  schemaMapKey,
  TopicFollower,
  type TopicTransaction,
  transactionsOf,
} from "../support/topic-reader.js";

// The capture's replication session pins these (connectors/postgres-source/slot-reader.ts), so the source's
// text output under the same settings is exactly what pgoutput sends.
const CAPTURE_VALUE_SETTINGS =
  "-c TimeZone=UTC -c DateStyle=ISO,YMD -c IntervalStyle=postgres -c extra_float_digits=1 -c bytea_output=hex";

const ODD = `"Odd Schema"."Mixed Case ""quoted"" .dots"`;
const ODD_NAME = `Odd Schema.Mixed Case "quoted" .dots`;
const et = "public.every_type";
const nk = "public.no_key";
const m24 = "public.measurements_2024";
const m25 = "public.measurements_2025";

/** A change as the test states it: relations by "schema.table", updates as changed column → new value. */
type Expected =
  | { kind: "insert"; table: string; values: ColumnValue[] }
  | { kind: "update"; table: string; key: ColumnValue[]; changed: [string, ColumnValue][] }
  | { kind: "delete"; table: string; key: ColumnValue[] }
  | { kind: "truncate"; tables: string[]; cascade: boolean; restartIdentity: boolean };

interface ExpectedTransaction {
  label: string;
  /** pg_current_wal_insert_lsn() just before COMMIT and just after: the commit record lies in between. */
  lsnBefore: Lsn;
  lsnAfter: Lsn;
  changes: Expected[];
}

let db: TestDatabase;
let source: pg.Client;
let capture: DiffrelayProcess | undefined;
let follower: TopicFollower | undefined;
const slot = uniqueName("cap_matrix_slot");
const publication = uniqueName("cap_matrix_pub");
const topic = uniqueName("cap_matrix_topic");

/** Rows as PostgreSQL's output-function text (no client-side parsing), as arrays in column order. */
async function rows(sql: string): Promise<ColumnValue[][]> {
  const result = await source.query<ColumnValue[]>({ text: sql, rowMode: "array" });
  return result.rows;
}

async function one(sql: string): Promise<ColumnValue[]> {
  const all = await rows(sql);
  expect(all, sql).toHaveLength(1);
  return all[0] as ColumnValue[];
}

const columnNames = new Map<string, string[]>();
async function columnsOf(table: string): Promise<string[]> {
  const known = columnNames.get(table);
  if (known) return known;
  const names = (
    await source.query<{ attname: string }>(
      "SELECT attname FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
      [table],
    )
  ).rows.map((r) => r.attname);
  columnNames.set(table, names);
  return names;
}

/** The columns whose text differs between two versions of a row, with their new values. */
async function diff(
  table: string,
  before: ColumnValue[],
  after: ColumnValue[],
): Promise<[string, ColumnValue][]> {
  const names = await columnsOf(table);
  const changed: [string, ColumnValue][] = [];
  names.forEach((name, i) => {
    if (before[i] !== after[i]) changed.push([name, after[i] as ColumnValue]);
  });
  return changed;
}

async function walInsertLsn(): Promise<Lsn> {
  const { rows: r } = await source.query<{ lsn: string }>("SELECT pg_current_wal_insert_lsn()::text AS lsn");
  return parseLsn(r[0]?.lsn as string);
}

/** Runs `sql` as one transaction; `expect` computes its expected changes from the committed state. */
async function commit(
  label: string,
  sql: string,
  expected: () => Promise<Expected[]>,
  prepare: () => Promise<void> = async () => undefined,
): Promise<ExpectedTransaction> {
  await prepare();
  await source.query("BEGIN");
  await source.query(sql);
  const lsnBefore = await walInsertLsn();
  await source.query("COMMIT");
  const lsnAfter = await walInsertLsn();
  return { label, lsnBefore, lsnAfter, changes: await expected() };
}

function nameOf(schemas: Map<string, RelationSchema>, ref: { relationId: number; version: number }): string {
  const schema = schemas.get(schemaMapKey(ref.relationId, ref.version));
  if (!schema) throw new Error(`no schema message for relation ${ref.relationId} version ${ref.version}`);
  return `${schema.schema}.${schema.table}`;
}

/** A decoded change in the test's terms, so that a mismatch prints readably. */
function describeChange(change: Change, schemas: Map<string, RelationSchema>): Expected {
  switch (change.kind) {
    case "insert":
      return { kind: "insert", table: nameOf(schemas, change.relation), values: change.values };
    case "update": {
      const schema = schemas.get(schemaMapKey(change.relation.relationId, change.relation.version));
      return {
        kind: "update",
        table: nameOf(schemas, change.relation),
        key: change.key,
        changed: change.changedColumns.map((c, i) => [
          schema?.columns[c]?.name ?? `#${c}`,
          change.values[i] as ColumnValue,
        ]),
      };
    }
    case "delete":
      return { kind: "delete", table: nameOf(schemas, change.relation), key: change.key };
    case "truncate":
      return {
        kind: "truncate",
        tables: change.relations.map((r) => nameOf(schemas, r)).sort(),
        cascade: change.cascade,
        restartIdentity: change.restartIdentity,
      };
    default:
      throw new Error(`unexpected ${change.kind} change on the data topic`);
  }
}

beforeAll(async () => {
  const services = testServices();
  db = await createTestDatabase(services.sourceUrl, "cap_matrix");
  // Tables exist before the capture starts, so that it gives them REPLICA IDENTITY FULL.
  await runSql(db.url, TYPE_MATRIX_DDL);
  source = new pg.Client({
    connectionString: db.url,
    options: CAPTURE_VALUE_SETTINGS,
    types: { getTypeParser: () => (text: string) => text },
  });
  await source.connect();
  capture = await startCapture({
    sourceUrl: db.url,
    brokers: services.kafkaBrokers,
    slot,
    publication,
    topic,
  });
  follower = await TopicFollower.start(services.kafkaBrokers, topic, "data");
});

afterAll(async () => {
  await follower?.stop();
  await stopCapture(capture);
  await source?.end().catch(() => undefined);
  await db?.drop();
  await deleteTopics(testServices().kafkaBrokers, [topic, `${topic}.schemas`]);
});

describe("diffrelay capture: the type matrix", () => {
  it("publishes every committed change, decoded exactly, in commit order, each transaction whole", async () => {
    const { kafkaBrokers } = testServices();
    const identity = (await columnsOf("every_type")).indexOf("id");
    const bigToast = (await columnsOf("every_type")).indexOf("big_toast");
    expect(identity).toBe(0);
    expect(bigToast).toBeGreaterThan(0);
    const stmt = (i: number) => TYPE_MATRIX_CHANGES[i] as string;
    expect(TYPE_MATRIX_CHANGES).toHaveLength(13);
    const noKeyByCtid = async () =>
      new Map((await rows("SELECT ctid::text, * FROM no_key")).map((r) => [r[0] as string, r.slice(1)]));
    const expected: ExpectedTransaction[] = [];

    // Every row of the fixtures in one transaction; values are the source's own text once committed.
    expected.push(
      await commit("insert every fixture row", TYPE_MATRIX_ROWS, async () => [
        ...(await rows("SELECT * FROM every_type ORDER BY id")).map(
          (values): Expected => ({ kind: "insert", table: et, values }),
        ),
        ...(await rows("SELECT * FROM no_key ORDER BY ctid")).map(
          (values): Expected => ({ kind: "insert", table: nk, values }),
        ),
        { kind: "insert", table: m24, values: await one("SELECT * FROM measurements_2024") },
        { kind: "insert", table: m25, values: await one("SELECT * FROM measurements_2025") },
        { kind: "insert", table: ODD_NAME, values: await one(`SELECT * FROM ${ODD}`) },
      ]),
    );

    // Updates of one row by primary key: the frame carries the old key and exactly what changed.
    const updateById = async (
      label: string,
      sql: string,
      oldId: string,
      newId: string,
      columns: string[],
    ) => {
      const before = await one(`SELECT * FROM every_type WHERE id = ${oldId}`);
      return commit(label, sql, async () => {
        const after = await one(`SELECT * FROM every_type WHERE id = ${newId}`);
        const changed = await diff("every_type", before, after);
        // The statement changed exactly these columns on the source, so the frame must carry exactly them.
        expect(changed.map(([name]) => name)).toEqual(columns);
        return [{ kind: "update", table: et, key: [oldId], changed }];
      });
    };
    expected.push(await updateById("one column", stmt(0), "1", "1", ["num"]));
    expected.push(await updateById("several columns", stmt(1), "1", "1", ["txt", "js", "m"]));
    expected.push(await updateById("TOAST changed", stmt(2), "1", "1", ["big_toast"]));
    expected.push(await updateById("key change", stmt(3), "2", "10", ["id"]));
    expected.push(await updateById("row of NULLs", stmt(4), "3", "3", ["i2"]));
    expected.push(await commit("delete", stmt(5), async () => [{ kind: "delete", table: et, key: ["3"] }]));

    // PK-less: the key is the whole old row. The fixture picks rows by ctid, so find them the same way.
    let noKeyBefore = await noKeyByCtid();
    expected.push(
      await commit("PK-less update", stmt(6), async () => {
        const after = await noKeyByCtid();
        const gone = [...noKeyBefore.keys()].filter((k) => !after.has(k));
        const added = [...after.keys()].filter((k) => !noKeyBefore.has(k));
        expect([gone.length, added.length]).toEqual([1, 1]);
        const oldRow = noKeyBefore.get(gone[0] as string) as ColumnValue[];
        const newRow = after.get(added[0] as string) as ColumnValue[];
        const changed = await diff("no_key", oldRow, newRow);
        expect(changed).toEqual([["b", "one"]]);
        return [{ kind: "update", table: nk, key: oldRow, changed }];
      }),
    );
    noKeyBefore = await noKeyByCtid();
    expected.push(
      await commit("PK-less delete", stmt(7), async () => {
        const after = await noKeyByCtid();
        const gone = [...noKeyBefore.keys()].filter((k) => !after.has(k));
        expect(gone).toHaveLength(1);
        return [{ kind: "delete", table: nk, key: noKeyBefore.get(gone[0] as string) as ColumnValue[] }];
      }),
    );

    // Partitioned: changes arrive under the leaf partitions (publish_via_partition_root = false).
    const m24Before = await one("SELECT * FROM measurements_2024");
    const m25Before = await one("SELECT * FROM measurements_2025");
    expected.push(
      await commit("update across partitions", stmt(8), async () => {
        const m24After = await one("SELECT * FROM measurements_2024");
        const m25After = await one("SELECT * FROM measurements_2025");
        return [
          {
            kind: "update",
            table: m24,
            key: ["1", "2024-03-01"],
            changed: await diff("measurements_2024", m24Before, m24After),
          },
          {
            kind: "update",
            table: m25,
            key: ["2", "2025-03-01"],
            changed: await diff("measurements_2025", m25Before, m25After),
          },
        ];
      }),
    );
    expected.push(
      await commit("row moves to another partition", stmt(9), async () => [
        { kind: "delete", table: m24, key: ["1", "2024-03-01"] },
        {
          kind: "insert",
          table: m25,
          values: await one("SELECT * FROM measurements_2025 WHERE id = 1"),
        },
      ]),
    );
    const oddBefore = await one(`SELECT * FROM ${ODD}`);
    expected.push(
      await commit("hostile identifiers", stmt(10), async () => {
        const changed = await diff(ODD, oddBefore, await one(`SELECT * FROM ${ODD}`));
        expect(changed).toEqual([["a.b", "x.y"]]);
        return [{ kind: "update", table: ODD_NAME, key: ["1"], changed }];
      }),
    );
    expected.push(
      await commit("truncate", stmt(11), async () => [
        { kind: "truncate", tables: [m24, m25], cascade: false, restartIdentity: false },
      ]),
    );
    expected.push(
      await commit("insert after truncate", stmt(12), async () => [
        {
          kind: "insert",
          table: m24,
          values: await one("SELECT * FROM measurements_2024 WHERE id = 3"),
        },
      ]),
    );

    // How the source stored big_toast: out of line (TOAST chunks) or compressed inline. Reported, since only
    // an out-of-line value is sent as "unchanged TOAST" by pgoutput; the assertions below hold either way.
    const toastTable = (
      await one("SELECT reltoastrelid::regclass::text FROM pg_class WHERE oid = 'every_type'::regclass")
    )[0];
    const [toastChunks] = await one(`SELECT count(*)::text FROM ${toastTable}`);
    const [stored, length] = await one(
      "SELECT pg_column_size(big_toast)::text, octet_length(big_toast)::text FROM every_type WHERE id = 1",
    );
    console.log(
      `big_toast of row 1: ${length} bytes of text stored as ${stored} bytes; ${toastChunks} chunks in ${toastTable}`,
    );

    const last = expected[expected.length - 1] as ExpectedTransaction;
    await (follower as TopicFollower).waitForCommitLsn(last.lsnBefore);
    await (follower as TopicFollower).waitForEnd();
    const records = (follower as TopicFollower).dataRecords();
    const schemas = await readSchemaTopic(kafkaBrokers, `${topic}.schemas`);

    // Every message, data and schema, comes from this source database, epoch 0.
    const sys = await one("SELECT system_identifier::text FROM pg_control_system()");
    const sourceId = computeSourceId(sys[0] as string, db.name);
    for (const r of records) expect(r.message.envelope).toEqual({ sourceId, epoch: 0 });

    const { transactions, abandoned, incomplete } = transactionsOf(records);
    expect(abandoned).toEqual([]);
    expect(incomplete).toBeUndefined();
    // Small transactions: each is one chunk 0, final.
    for (const t of transactions) {
      expect(t.chunks.map((c) => [c.header.chunk, c.header.finalChunk])).toEqual([[0, true]]);
    }
    // Commit order: LSNs strictly increase across the topic.
    for (let i = 1; i < transactions.length; i++) {
      expect((transactions[i] as TopicTransaction).commitLsn).toBeGreaterThan(
        (transactions[i - 1] as TopicTransaction).commitLsn,
      );
    }
    expect(transactions.map((t) => formatLsn(t.commitLsn))).toHaveLength(expected.length);
    expected.forEach((e, i) => {
      const t = transactions[i] as TopicTransaction;
      // Each topic transaction is the statement committed in that LSN window, whole.
      expect(t.commitLsn >= e.lsnBefore && t.commitLsn < e.lsnAfter, `${e.label}: commit LSN window`).toBe(
        true,
      );
      expect(
        t.changes.map((c) => describeChange(c, schemas)),
        e.label,
      ).toEqual(e.changes);
    });

    // TOAST: unchanged big_toast is absent from the updates that left it alone; the one that changed it carries it.
    const updates = (label: string) =>
      (transactions[expected.findIndex((e) => e.label === label)] as TopicTransaction).changes.filter(
        (c) => c.kind === "update",
      );
    for (const label of ["one column", "several columns"]) {
      for (const u of updates(label)) expect(u.changedColumns).not.toContain(bigToast);
    }
    const toastUpdate = updates("TOAST changed")[0];
    expect(toastUpdate?.changedColumns).toEqual([bigToast]);
    expect(toastUpdate?.values[0]).toMatch(/^(toast-me ){20000}more$/);
    // Key change: the old key in the key fields, the new key among the changed columns.
    const keyChange = updates("key change")[0];
    expect([keyChange?.key, keyChange?.changedColumns, keyChange?.values]).toEqual([
      ["2"],
      [identity],
      ["10"],
    ]);

    // The schema topic names the partitions, never the partitioned parent, and describes each relation.
    const named = new Map<string, RelationSchema>();
    for (const s of schemas.values()) named.set(`${s.schema}.${s.table}`, s);
    expect([...named.keys()].sort()).toEqual([ODD_NAME, et, m24, m25, nk].sort());
    for (const [name, schema] of named) {
      expect(schema.replicaIdentity, name).toBe("full");
      const table = name === ODD_NAME ? ODD : name;
      expect(
        schema.columns.map((c) => c.name),
        name,
      ).toEqual(await columnsOf(table));
    }
    expect(named.get(nk)).toMatchObject({ hasPrimaryKey: false, keyColumns: [0, 1, 2] });
    expect(named.get(et)).toMatchObject({ hasPrimaryKey: true, keyColumns: [0] });
    expect(named.get(m24)).toMatchObject({ hasPrimaryKey: true, keyColumns: [0, 1] });
    expect(named.get(ODD_NAME)?.columns.map((c) => c.name)).toEqual([
      "Key Col",
      "value; DROP TABLE x; --",
      "a.b",
    ]);
    // Type names are the source's format_type, schema-qualified (as with an empty search_path) so they
    // resolve the same on a standby whatever its search_path.
    await source.query("BEGIN; SET LOCAL search_path = pg_catalog");
    const typeNames = (
      await source.query<{ t: string }>(
        "SELECT format_type(atttypid, atttypmod) AS t FROM pg_attribute WHERE attrelid = 'public.every_type'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
      )
    ).rows.map((r) => r.t);
    await source.query("COMMIT");
    expect(typeNames).toContain("public.mood");
    expect(named.get(et)?.columns.map((c) => c.typeName)).toEqual(typeNames);
  });
});
