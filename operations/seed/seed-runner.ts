import { randomBytes } from "node:crypto";
import type { Admin } from "kafkajs";
import pg from "pg";
import {
  identifySource,
  replicatedSequences,
  resolveCaptureSlot,
  slotInfo,
} from "../../connectors/postgres-source/index.js";
import {
  advanceSequenceStatement,
  assertApplierStopped,
  markSeedFinished,
  markSeedStarted,
} from "../../connectors/postgres-standby/index.js";
import { formatLsn, type Lsn } from "../../src/change/lsn.js";
import { asStandbyWriter } from "../../src/config/standby-session.js";
import { closeQuietly } from "../../src/errors/close-quietly.js";
import { DiffrelayError } from "../../src/errors/diffrelay-error.js";
import { partitionOffsets } from "../../src/kafka/topic-admin.js";
import type { SourceTopics } from "../../src/kafka/topic-names.js";
import { loadMigrations, runMigrations } from "../../src/migrations/migration-runner.js";
import { quoteQualified } from "../../src/sql/quote.js";
import { withValueFormat } from "../../src/sql/value-format.js";
import { computeSourceId } from "../../src/wire/envelope.js";
import { type PublishedTable, publishedTables } from "./published-tables.js";
import { createTablesFromSource } from "./schema-creator.js";
import { SeedProgress } from "./seed-progress.js";
import { createExportedSnapshot } from "./snapshot-slot.js";
import {
  type CopyItem,
  copyItems,
  emptyStandbyTable,
  openStandbySession,
  planRanges,
} from "./table-copier.js";

/**
 * The capture publishes these sequences' positions: a standby without one would stop its
 * applier at the first of them, so the seed refuses before it copies anything.
 */
async function assertSequencesPresent(
  standby: pg.Client,
  sequences: { schema: string; name: string }[],
): Promise<void> {
  const names = sequences.map((s) => quoteQualified(s.schema, s.name));
  const { rows } = await standby.query<{ name: string }>(
    "SELECT name FROM unnest($1::text[]) AS name WHERE pg_catalog.to_regclass(name) IS NULL",
    [names],
  );
  if (rows.length > 0) {
    throw new SeedRefusedError(
      `sequences missing on the standby: ${rows.map((r) => r.name).join(", ")} (the publication replicates them: create them on the standby as on the source)`,
    );
  }
}

/** Why seeding cannot start (maps to exit code 3, "setup"). */
export class SeedRefusedError extends DiffrelayError {
  override name = "SeedRefusedError";

  constructor(message: string, options?: { cause?: unknown }) {
    super("setup", message, options);
  }
}

export interface SeedOptions {
  sourceUrl: string;
  sourceConfig: pg.ClientConfig;
  standbyUrl: string;
  standbyConfig: pg.ClientConfig;
  standbyName: string;
  topics: SourceTopics;
  admin: Admin;
  publication: string;
  /** Unset: the default for the source's database. */
  captureSlot: string | undefined;
  parallel: number;
  rangeRows: number;
  createSchema: boolean;
  /** The epoch of `topics` (0 unless the source was promoted). */
  epoch?: number;
  progress?: SeedProgress;
}

export interface SeedResult {
  consistentPoint: string;
  lastCommitLsn: string;
  nextOffset: string;
  tables: { table: string; ranges: number; binary: boolean }[];
}

/**
 * Copies the published tables from one exported snapshot and then records the
 * exact position that snapshot corresponds to. See `seedPosition` for the rule.
 */
export async function runSeed(given: SeedOptions): Promise<SeedResult> {
  // COPY's text format prints with the source session's settings and parses with the standby's.
  const options: SeedOptions = {
    ...given,
    sourceConfig: withValueFormat(given.sourceConfig),
    standbyConfig: asStandbyWriter(withValueFormat(given.standbyConfig)),
  };
  const progress = options.progress ?? new SeedProgress();
  const source = new pg.Client(options.sourceConfig);
  source.on("error", () => undefined);
  await source.connect();
  const standby = await openStandbySession(options.standbyConfig);
  let snapshot: Awaited<ReturnType<typeof createExportedSnapshot>> | null = null;
  try {
    const identity = await identifySource(source);
    const captureSlot = await resolveCaptureSlot(source, options.captureSlot, (message) =>
      progress.log({ event: "note", message }),
    );
    const slot = await slotInfo(source, captureSlot);
    if (!slot.exists) {
      throw new SeedRefusedError(
        `the capture's slot "${captureSlot}" does not exist on the source: start diffrelay capture (or run diffrelay migrate) first. ` +
          "Without it nothing guarantees that the transactions committed after the seed's snapshot ever reach the topic.",
      );
    }
    await runMigrations(standby, loadMigrations("standby"));
    // It overwrites the position row in every transaction and writes into the tables being copied.
    await assertApplierStopped(
      options.admin,
      options.standbyName,
      options.topics.data,
      (running) => new SeedRefusedError(`${running}; stop it before seeding`),
    );

    // Read BEFORE the snapshot exists: see seedPosition.
    const nextOffset = await topicEnd(options.admin, options.topics.data);

    await markSeedStarted(standby, options.topics.data);

    const slotName = `diffrelay_seed_${process.pid}_${randomBytes(4).toString("hex")}`;
    snapshot = await createExportedSnapshot(options.sourceConfig, slotName, identity.serverVersionNum);
    const snapshotTimeMicros = BigInt(Date.now()) * 1000n;
    progress.log({
      event: "snapshot exported",
      consistentPoint: formatLsn(snapshot.consistentPoint),
      nextOffset: nextOffset.toString(),
    });

    const tables = await publishedTables(source, options.publication);
    if (tables.length === 0) {
      throw new SeedRefusedError(`publication "${options.publication}" publishes no table on the source`);
    }
    const standbyInfo = await describeStandbyTables(standby, tables);
    const missing = tables.filter((t) => !standbyInfo.has(t.qualified));
    if (missing.length > 0) {
      if (!options.createSchema) {
        throw new SeedRefusedError(
          `tables missing on the standby: ${missing.map((t) => `${t.schema}.${t.name}`).join(", ")} (create them, or pass --create-schema)`,
        );
      }
      await createTablesFromSource(
        options.sourceUrl,
        options.standbyUrl,
        missing,
        Math.floor(identity.serverVersionNum / 10000),
      );
      for (const [k, v] of await describeStandbyTables(standby, missing)) standbyInfo.set(k, v);
    }
    const sequences = await replicatedSequences(source, options.publication);
    await assertSequencesPresent(standby, sequences);
    const standbyMajor = Number(
      (await standby.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]?.v,
    );
    const sameMajor = Math.floor(standbyMajor / 10000) === Math.floor(identity.serverVersionNum / 10000);

    const items: CopyItem[] = [];
    const summary: SeedResult["tables"] = [];
    const split: { table: PublishedTable; relkind: string }[] = [];
    for (const table of tables) {
      const info = standbyInfo.get(table.qualified);
      if (!info) throw new SeedRefusedError(`table ${table.schema}.${table.name} is missing on the standby`);
      const copied = table.columns.filter((c) => !c.generated);
      const absent = copied.filter((c) => !info.types.has(c.name));
      if (absent.length > 0) {
        throw new SeedRefusedError(
          `${table.schema}.${table.name} on the standby lacks column(s) ${absent.map((c) => c.name).join(", ")}`,
        );
      }
      // Binary only where the bytes mean the same on both servers; text is always safe.
      const binary =
        sameMajor && copied.every((c) => c.binaryPortable && info.types.get(c.name) === c.typeName);
      const ranges = planRanges(table, { rangeRows: options.rangeRows });
      const whole = ranges.length === 1 && ranges[0] === null;
      if (!whole) split.push({ table, relkind: info.relkind });
      for (const range of ranges) {
        items.push({ table, standbyRelkind: info.relkind, range, binary, truncate: whole });
      }
      progress.register(`${table.schema}.${table.name}`, table.estimatedRows, ranges.length);
      summary.push({ table: `${table.schema}.${table.name}`, ranges: ranges.length, binary });
    }
    // A table copied in several ranges (several standby transactions) is emptied first, on its own.
    for (const { table, relkind } of split) {
      await standby.query("BEGIN");
      await emptyStandbyTable(standby, table, relkind);
      await standby.query("COMMIT");
    }
    // Largest first, so the long copies start early and the workers finish together.
    items.sort((a, b) => b.table.pages - a.table.pages);
    await copyItems(items, {
      sourceConfig: options.sourceConfig,
      standbyConfig: options.standbyConfig,
      snapshotName: snapshot.snapshotName,
      parallel: options.parallel,
      progress,
    });
    // Sequences are not transactional: what the source shows now is at or past its state at the
    // snapshot, so moving the standby's forward to it can only skip values, never reuse one.
    for (const position of await replicatedSequences(source, options.publication)) {
      const statement = advanceSequenceStatement({ ...position, isCalled: true }, 0, 0);
      await standby.query(statement.sql, statement.params as unknown[]);
    }
    progress.finish();

    // A slot dropped (and maybe recreated later in the WAL) during the copy breaks the guarantee.
    const after = await slotInfo(source, captureSlot);
    if (!after.exists) {
      throw new SeedRefusedError(
        `the capture's slot "${captureSlot}" disappeared during the copy; no position was written, seed again`,
      );
    }
    const position = seedPosition(snapshot.consistentPoint, nextOffset);
    await markSeedFinished(standby, options.standbyName, {
      topic: options.topics.data,
      partition: 0,
      nextOffset: position.nextOffset,
      lastCommitLsn: position.lastCommitLsn,
      // The last transaction before the consistent point committed no later than the snapshot was taken.
      lastCommitTimeMicros: snapshotTimeMicros,
      sourceId: computeSourceId(identity.systemIdentifier, identity.databaseName),
      epoch: options.epoch ?? 0,
    });
    return {
      consistentPoint: formatLsn(snapshot.consistentPoint),
      lastCommitLsn: formatLsn(position.lastCommitLsn),
      nextOffset: position.nextOffset.toString(),
      tables: summary,
    };
  } finally {
    await snapshot?.close();
    await closeQuietly(source.end());
    await closeQuietly(standby.end());
  }
}

/**
 * The applier position that continues exactly where the snapshot ends.
 *
 * lastCommitLsn = consistentPoint - 1. The snapshot holds exactly the
 * transactions whose commit record starts before the consistent point
 * (commit LSN < C); our frames' commit LSN is that start (pgoutput Begin's
 * final_lsn). The applier skips a transaction iff commit LSN <= lastCommitLsn,
 * i.e. iff commit LSN <= C - 1, i.e. iff commit LSN < C: precisely the
 * transactions already in the copy. A commit at exactly C is applied.
 *
 * nextOffset = the topic's end offset read before the temporary slot was
 * created. The slot's consistent point is at or after the WAL insert position
 * at the moment its creation began, so every transaction with commit LSN >= C
 * wrote its commit record after that read, and the capture can only publish a
 * transaction after decoding its commit: it lands at an offset >= that end
 * offset. Messages from there on that hold older transactions (a lagging
 * capture, or replays after a capture restart) are skipped by the commit-LSN
 * rule. This needs no old message, so topic retention cannot make it unsafe;
 * what it needs is the capture's slot to exist before the read (checked), so
 * that every later commit is decoded and published at all.
 */
export function seedPosition(
  consistentPoint: Lsn,
  topicEndBeforeSnapshot: bigint,
): { lastCommitLsn: Lsn; nextOffset: bigint } {
  if (consistentPoint <= 0n) throw new Error("the consistent point must be a positive LSN");
  return { lastCommitLsn: consistentPoint - 1n, nextOffset: topicEndBeforeSnapshot };
}

/** The data topic's end offset, or 0 when the capture has not created the topic yet (it starts at 0). */
async function topicEnd(admin: Admin, topic: string): Promise<bigint> {
  const topics = new Set(await admin.listTopics());
  if (!topics.has(topic)) return 0n;
  return (await partitionOffsets(admin, topic)).high;
}

interface StandbyTableInfo {
  relkind: string;
  /** Column name → format_type. */
  types: Map<string, string>;
}

async function describeStandbyTables(
  standby: pg.Client,
  tables: PublishedTable[],
): Promise<Map<string, StandbyTableInfo>> {
  const result = new Map<string, StandbyTableInfo>();
  for (const table of tables) {
    const { rows } = await standby.query<{
      relkind: string;
      attname: string | null;
      type_name: string | null;
    }>(
      `SELECT c.relkind::text AS relkind, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod) AS type_name
         FROM pg_catalog.pg_class c
         JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
        WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'p')`,
      [table.schema, table.name],
    );
    const first = rows[0];
    if (!first) continue;
    const types = new Map<string, string>();
    for (const r of rows) if (r.attname !== null && r.type_name !== null) types.set(r.attname, r.type_name);
    result.set(table.qualified, { relkind: first.relkind, types });
  }
  return result;
}
