import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type {
  CommitMessage,
  PgoutputMessage,
} from "../../connectors/postgres-source/pgoutput/pgoutput-decoder.js";
import { MAX_VALUE_BYTES } from "../../connectors/postgres-source/pgoutput/pgoutput-decoder.js";
import { SlotReader, type SlotReaderOptions } from "../../connectors/postgres-source/slot-reader.js";
import { slotInfo } from "../../connectors/postgres-source/source-catalog.js";
import { SourceConfigurationError } from "../../connectors/postgres-source/source-errors.js";
import { migrateSource } from "../../connectors/postgres-source/source-migrator.js";
import { formatLsn, type Lsn, parseLsn } from "../../src/change/lsn.js";
import { asText } from "../support/pgoutput-text.js";
import {
  createTestDatabase,
  runSql,
  type TestDatabase,
  testServices,
  withClient,
} from "../support/services.js";

const PUBLICATION = "diffrelay_pub";
const SLOT = "diffrelay_slot";

let db: TestDatabase;

async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function confirmedFlush(): Promise<Lsn | null> {
  return withClient(db.url, async (c) => (await slotInfo(c, SLOT)).confirmedFlushLsn);
}

/** A reader of the test's slot and publication, with these options over the defaults. */
function slotReader(onMessage: SlotReaderOptions["onMessage"], options: Partial<SlotReaderOptions> = {}) {
  return new SlotReader({
    connection: db.url,
    slotName: SLOT,
    publicationName: PUBLICATION,
    applicationName: SLOT,
    maxValueBytes: MAX_VALUE_BYTES,
    isIdle: () => false,
    statusDelayMs: () => 0,
    onMessage,
    ...options,
  });
}

/** A reader that records every message; transactions count as durable only when the test says so. */
function recordingReader(options: { startLsn?: Lsn; idle?: () => boolean; statusDelayMs?: number } = {}) {
  const messages: { msg: PgoutputMessage }[] = [];
  const reader = slotReader(
    (msg) => {
      messages.push({ msg: asText(msg) });
      return undefined;
    },
    {
      startLsn: options.startLsn,
      statusIntervalMs: 200,
      isIdle: options.idle ?? (() => false),
      statusDelayMs: () => options.statusDelayMs ?? 0,
    },
  );
  const running = reader.start();
  const commits = () => messages.filter((m): m is { msg: CommitMessage } => m.msg.tag === "commit");
  return { reader, running, messages, commits };
}

/** The Commit of the transaction that inserted the row with this id, once it has arrived. */
function commitAfterInsert(messages: { msg: PgoutputMessage }[], id: string) {
  const at = messages.findIndex((m) => m.msg.tag === "insert" && m.msg.newTuple[0] === id);
  if (at < 0) return undefined;
  return messages.slice(at).find((m): m is { msg: CommitMessage } => m.msg.tag === "commit");
}

beforeAll(async () => {
  db = await createTestDatabase(testServices().sourceUrl, "slot_reader");
  await runSql(
    db.url,
    `CREATE TABLE typed (
       id int PRIMARY KEY, ts timestamptz, n numeric, j json, jb jsonb, by bytea, arr text[],
       d date, iv interval, t text, big text, f float8);
     -- Stored out of line uncompressed, so an update that leaves it alone sends 'u' for it.
     ALTER TABLE typed ALTER COLUMN big SET STORAGE EXTERNAL;
     CREATE TABLE unpublished (id serial PRIMARY KEY, v text)`,
  );
  await withClient(db.url, (c) =>
    migrateSource(c, { publicationName: PUBLICATION, slotName: SLOT, tables: ["typed"] }),
  );
});

afterAll(async () => {
  await db?.drop();
});

describe("SlotReader against PostgreSQL", () => {
  it("delivers values as PostgreSQL's exact text", async () => {
    const { reader, running, messages, commits } = recordingReader();
    try {
      await runSql(
        db.url,
        `INSERT INTO typed VALUES (
           1, '2024-02-29 23:59:59.999999+00', '12345678901234567890.000000000000000001',
           '{"a": 1,   "a":2 ,"b" :[ ]}', '{"z": 1, "a": [1.50, "ü"]}', '\\x00ff10', ARRAY['x,y', NULL, '"q"', '日本'],
           '0044-03-15 BC', '1 year 2 mons 3 days 04:05:06.000007', E'tab\\tnew\\nline ✓ 😀', repeat('toast', 5000),
           'NaN')`,
      );
      const commit = await waitFor("the insert", () => commits()[0]);
      const insert = messages.find((m) => m.msg.tag === "insert")?.msg;
      const row = await withClient(db.url, async (c) => {
        await c.query("SET TIME ZONE 'UTC'; SET DateStyle = 'ISO, YMD'; SET IntervalStyle = 'postgres'");
        return (
          await c.query<string[]>({
            text: `SELECT id::text, ts::text, n::text, j::text, jb::text, by::text, arr::text, d::text,
                          iv::text, t, big, f::text FROM typed WHERE id = 1`,
            rowMode: "array",
          })
        ).rows[0];
      });
      expect(insert).toEqual({ tag: "insert", relationId: expect.any(Number), newTuple: row });
      expect(insert?.tag === "insert" && insert.newTuple[1]).toBe("2024-02-29 23:59:59.999999+00");
      expect(insert?.tag === "insert" && insert.newTuple[3]).toBe('{"a": 1,   "a":2 ,"b" :[ ]}');
      expect(insert?.tag === "insert" && insert.newTuple[7]).toBe("0044-03-15 BC");
      const begin = messages.find((m) => m.msg.tag === "begin")?.msg;
      expect(begin?.tag === "begin" && begin.finalLsn).toBe(commit.msg.commitLsn);

      // An update that leaves the TOASTed column alone: FULL identity sends the old row, and 'u' for it.
      await runSql(db.url, "UPDATE typed SET f = 1.5 WHERE id = 1");
      await waitFor("the update", () => commits()[1]);
      const update = messages.find((m) => m.msg.tag === "update")?.msg;
      expect(update).toMatchObject({ tag: "update", oldKind: "old" });
      expect(update?.tag === "update" && update.newTuple[11]).toBe("1.5");
      expect(update?.tag === "update" && typeof update.newTuple[10]).toBe("symbol");
    } finally {
      await reader.stop();
      await running;
    }
  });

  it("moves confirmed_flush_lsn to exactly the confirmed LSN, and never past it", async () => {
    const before = await confirmedFlush();
    const first = recordingReader({ startLsn: before ?? undefined });
    await runSql(db.url, "INSERT INTO typed (id, t) VALUES (10, 'ten')");
    // The slot may first replay an earlier test's unconfirmed transaction: find A by its row.
    const commitA = (await waitFor("transaction A", () => commitAfterInsert(first.messages, "10"))).msg;
    await new Promise((r) => setTimeout(r, 600)); // three status intervals
    expect(await confirmedFlush()).toBe(before);

    first.reader.confirm(commitA.endLsn);
    await waitFor("confirmed_flush_lsn = A's end", async () =>
      (await confirmedFlush()) === commitA.endLsn ? true : undefined,
    );
    expect(first.reader.confirmedLsn).toBe(commitA.endLsn);

    // B is received but never confirmed: a new reader from the durable position gets it again.
    await runSql(db.url, "INSERT INTO typed (id, t) VALUES (11, 'eleven')");
    const commitB = (await waitFor("transaction B", () => commitAfterInsert(first.messages, "11"))).msg;
    await first.reader.stop();
    await first.running;
    expect(await confirmedFlush()).toBe(commitA.endLsn);

    // Its status updates wait 100 ms to carry more confirms; the last one goes out at stop().
    const second = recordingReader({ startLsn: commitA.endLsn, statusDelayMs: 100 });
    try {
      const again = await waitFor("B streamed again", () => second.commits()[0]);
      expect(again.msg).toEqual(commitB);
      const inserted = second.messages.find((m) => m.msg.tag === "insert")?.msg;
      expect(inserted?.tag === "insert" && inserted.newTuple[0]).toBe("11");
      expect(second.messages.some((m) => m.msg.tag === "commit" && m.msg.endLsn === commitA.endLsn)).toBe(
        false,
      );
      second.reader.confirm(commitB.endLsn);
      await waitFor("confirmed B", async () =>
        (await confirmedFlush()) === commitB.endLsn ? true : undefined,
      );
      await runSql(db.url, "INSERT INTO typed (id, t) VALUES (12, 'twelve')");
      const commitC = (await waitFor("transaction C", () => commitAfterInsert(second.messages, "12"))).msg;
      second.reader.confirm(commitC.endLsn);
      await second.reader.stop();
      await second.running;
      expect(await confirmedFlush()).toBe(commitC.endLsn);
    } finally {
      await second.reader.stop();
      await second.running;
    }
    expect(formatLsn(commitB.endLsn)).toMatch(/^[0-9A-F]+\/[0-9A-F]+$/);
  });

  it("confirms the keepalive position when nothing is pending, so an idle slot does not pin WAL", async () => {
    const start = await confirmedFlush();
    const { reader, running } = recordingReader({ startLsn: start ?? undefined, idle: () => true });
    try {
      await runSql(db.url, "INSERT INTO unpublished (v) SELECT 'x' FROM generate_series(1, 100)");
      const written = parseLsn(
        (await runSql<{ lsn: string }>(db.url, "SELECT pg_current_wal_lsn()::text AS lsn")).rows[0]?.lsn ??
          "",
      );
      await waitFor("the slot to pass the unpublished write", async () => {
        const confirmed = await confirmedFlush();
        return confirmed !== null && confirmed >= written ? true : undefined;
      });
      expect(reader.lastServerWalEnd).toBeGreaterThanOrEqual(written);
      expect(reader.confirmedLsn).toBeGreaterThanOrEqual(written);
    } finally {
      await reader.stop();
      await running;
    }
  });

  it("confirms no keepalive while the sink holds something undurable, and abort() ends the stream with its error", async () => {
    const start = await confirmedFlush();
    const { reader, running } = recordingReader({ startLsn: start ?? undefined, idle: () => false });
    const rejected = running.then(
      () => null,
      (err: unknown) => err,
    );
    await runSql(db.url, "INSERT INTO unpublished (v) SELECT 'x' FROM generate_series(1, 100)");
    const written = parseLsn(
      (await runSql<{ lsn: string }>(db.url, "SELECT pg_current_wal_insert_lsn()::text AS lsn")).rows[0]
        ?.lsn ?? "",
    );
    await waitFor("a keepalive past the unpublished write", () =>
      reader.lastServerWalEnd >= written ? true : undefined,
    );
    await new Promise((r) => setTimeout(r, 600)); // three status intervals
    expect(await confirmedFlush()).toBe(start);

    const failure = new Error("the sink failed between messages");
    reader.abort(failure);
    expect(await rejected).toBe(failure);
    expect(await confirmedFlush()).toBe(start);
  });

  it("stops at once while the sink holds a message back (the socket paused), and frees the slot", async () => {
    let held = false;
    // Kafka never makes room: the reader pauses its socket behind the first message.
    const reader = slotReader(() => {
      held = true;
      return new Promise<void>(() => undefined);
    });
    const running = reader.start();
    await runSql(db.url, "INSERT INTO typed (id, t) VALUES (20, 'twenty')");
    await waitFor("a message held back", () => (held ? true : undefined));
    await runSql(db.url, "INSERT INTO typed (id, t) SELECT g, 'more' FROM generate_series(21, 2000) g");
    const stopAt = Date.now();
    await reader.stop();
    await running;
    // Well within the 5 s that stop() gives a server that does not close the stream.
    expect(Date.now() - stopAt).toBeLessThan(4000);
    await waitFor("the slot released", async () =>
      (await withClient(db.url, (c) => slotInfo(c, SLOT))).active ? undefined : true,
    );
  });

  it("refuses a slot another process is reading, as a non-retryable error", async () => {
    const holder = recordingReader();
    try {
      await waitFor("the first reader to hold the slot", async () =>
        (await withClient(db.url, (c) => slotInfo(c, SLOT))).active ? true : undefined,
      );
      const intruder = slotReader(async () => undefined);
      const failure = await intruder.start().then(
        () => new Error("second reader started"),
        (error: unknown) => error,
      );
      expect(failure).toBeInstanceOf(SourceConfigurationError);
      expect(failure).toMatchObject({ problem: "slot_in_use", kind: "setup" });
      expect(String((failure as Error).message)).toMatch(/is in use by another process.*active for PID/);
    } finally {
      await holder.reader.stop();
      await holder.running;
    }
  });

  it("reports a missing slot as a non-retryable error", async () => {
    const reader = slotReader(async () => undefined, {
      slotName: "no_such_slot",
      applicationName: "no_such_slot",
    });
    await expect(reader.start()).rejects.toMatchObject({ problem: "slot_missing", kind: "setup" });
  });
});
