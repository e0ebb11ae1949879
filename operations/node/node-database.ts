import type pg from "pg";
import {
  defaultSlotName,
  identifySource,
  readZeroLossState,
  releaseZeroLoss,
  resolveCaptureSlot,
  type ZeroLossGuarantee,
} from "../../connectors/postgres-source/index.js";
import { latestRejoinReport, readPosition } from "../../connectors/postgres-standby/index.js";
import type { DiffrelayConfig } from "../../src/config/config-schema.js";
import { postgresClientConfig } from "../../src/config/postgres-connection.js";
import { computeSourceId } from "../../src/wire/envelope.js";
import {
  onNeighbourDatabase,
  setDatabaseConnectable,
  setDatabaseReadOnly,
  writableSessionUrl,
} from "../promote/database-access.js";
import { fenceOldPrimary, type OldPrimaryState } from "../promote/old-primary-fence.js";
import { withDatabase } from "../promote/promote-steps.js";

/** Connection failures that mean the server is down or not accepting sessions yet (crash recovery, a restart). */
const SERVER_DOWN_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "EPIPE",
]);
const SERVER_STARTING_SQLSTATES = new Set(["57P01", "57P02", "57P03"]);

/** Whether `err` says the database server does not answer (as opposed to refusing this node something). */
export function isServerDown(err: unknown): boolean {
  for (let e = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string" && (SERVER_DOWN_CODES.has(code) || SERVER_STARTING_SQLSTATES.has(code)))
      return true;
    if (/Connection terminated|timeout expired|connect ETIMEDOUT|connection timeout/i.test(e.message))
      return true;
  }
  return false;
}

/** What a node finds in its own database when it starts or the cluster moves on. */
export interface DatabaseRoleFacts {
  /** The capture's slot exists: this database was a source. */
  hasCaptureSlot: boolean;
  /** The standby's position on these topics, if it has one: next offset. */
  positionOn: (topic: string) => Promise<bigint | null>;
  /** The report of a completed rejoin onto this topic (diffrelay.rejoin_report), if this database has one. */
  rejoinedOnto: (topic: string) => Promise<{ id: string; report: unknown; repairedAt: Date } | null>;
}

async function databaseFacts(url: string, config: DiffrelayConfig): Promise<DatabaseRoleFacts> {
  const hasCaptureSlot = await withDatabase(url, config, async (client) => {
    const slot = await resolveCaptureSlot(client, config.capture.slot);
    const { rowCount } = await client.query("SELECT 1 FROM pg_replication_slots WHERE slot_name = $1", [
      slot,
    ]);
    return (rowCount ?? 0) > 0;
  });
  return {
    hasCaptureSlot,
    positionOn: (topic) =>
      withDatabase(url, config, async (client) => {
        const exists = await client.query("SELECT to_regclass('diffrelay.apply_position') IS NOT NULL AS ok");
        if (!exists.rows[0]?.ok) return null;
        return (await readPosition(client, topic, 0))?.nextOffset ?? null;
      }),
    rejoinedOnto: (topic) =>
      withDatabase(url, config, async (client) => {
        const exists = await client.query("SELECT to_regclass('diffrelay.rejoin_report') IS NOT NULL AS ok");
        if (!exists.rows[0]?.ok) return null;
        const found = await latestRejoinReport(client, topic);
        return found?.repairedAt
          ? { id: found.id, report: found.report, repairedAt: found.repairedAt }
          : null;
      }),
  };
}

/**
 * Drops the capture's slot once its walsender is gone. A demoted primary must
 * not keep it: it would pin WAL, and a later promotion must start a new slot at
 * that moment, not resend what an older epoch already published.
 */
async function dropCaptureSlot(url: string, config: DiffrelayConfig, timeoutMs: number): Promise<void> {
  await withDatabase(url, config, async (client) => {
    const slot = await resolveCaptureSlot(client, config.capture.slot);
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const { rows } = await client.query<{ active: boolean }>(
        "SELECT active FROM pg_replication_slots WHERE slot_name = $1",
        [slot],
      );
      if (rows.length === 0) return;
      if (!rows[0]?.active) {
        await client.query("SELECT pg_drop_replication_slot($1)", [slot]);
        return;
      }
      if (Date.now() > deadline) {
        throw new Error(
          `slot "${slot}" was still in use ${timeoutMs} ms after the capture stopped: end its walsender and restart the node`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  });
}

/**
 * Fences a primary the cluster has left behind: new sessions read-only, no
 * connections at all, the open client sessions ended and gone. It keeps what
 * it holds for rejoin to compare with the new primary. Then, when
 * synchronous_standby_names names this database's capture alone (zero-loss
 * mode set it), it is reset: that capture will not run here again, and commits
 * on this server would wait for it forever. The sessions end first, so no
 * commit that waited for the capture is released to its client as if Kafka
 * held it.
 */
async function fenceStalePrimary(url: string, config: DiffrelayConfig): Promise<ZeroLossRelease> {
  const clientConfig = postgresClientConfig(url, config.standby?.tls);
  await setDatabaseReadOnly(clientConfig, true);
  await setDatabaseConnectable(clientConfig, false);
  // With connections refused, this runs on the server's postgres database.
  const neighbour = new URL(url);
  const database = decodeURIComponent(neighbour.pathname.slice(1));
  neighbour.pathname = "/postgres";
  return withDatabase(neighbour.toString(), config, async (c) => {
    const sessions = `SELECT pid FROM pg_stat_activity
      WHERE datname = $1 AND pid <> pg_backend_pid() AND backend_type = 'client backend'`;
    await c.query(`SELECT pg_terminate_backend(pid) FROM (${sessions}) s`, [database]);
    const deadline = Date.now() + SESSIONS_GONE_MS;
    while ((await c.query(sessions, [database])).rowCount) {
      if (Date.now() > deadline) {
        throw new Error(
          `database "${database}" still has client sessions ${SESSIONS_GONE_MS} ms after they were ended: look at pg_stat_activity and end them, then restart the node`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    return releaseCapture(c, database, config);
  });
}

/**
 * A database whose capture stopped for good (a switchover's old primary, once
 * its capture published everything committed): when synchronous_standby_names
 * names that capture alone (zero-loss mode set it), it is reset, or every
 * commit on the server that waits for a synchronous standby, the node's own
 * position writes included, would wait forever. Runs on the server's postgres
 * database, which a fenced database leaves reachable.
 */
async function releaseZeroLossOf(url: string, config: DiffrelayConfig): Promise<ZeroLossRelease> {
  const neighbour = new URL(url);
  const database = decodeURIComponent(neighbour.pathname.slice(1));
  neighbour.pathname = "/postgres";
  return withDatabase(neighbour.toString(), config, (c) => releaseCapture(c, database, config));
}

function releaseCapture(
  client: pg.ClientBase,
  database: string,
  config: DiffrelayConfig,
): Promise<ZeroLossRelease> {
  // Without the privilege a fence still holds; the node says what to do about the setting.
  return releaseZeroLoss(client, config.capture.slot ?? defaultSlotName(database)).catch((err) => {
    if ((err as { code?: string }).code === "42501") return "not-permitted" as const;
    throw err;
  });
}

export type ZeroLossRelease = "released" | "not-set" | "still-set" | "not-permitted";

const SESSIONS_GONE_MS = 30_000;

/**
 * The node's one handle on its own database: what it finds there and every
 * lever it pulls on it (read-only, connections, the fences, the capture's
 * slot and zero-loss setting, its source identity).
 */
export class NodeDatabase {
  constructor(
    private readonly url: string,
    private readonly config: DiffrelayConfig,
  ) {}

  /** A session that may write while new client sessions are read-only: the applier's and the node's own bookkeeping. */
  get writableUrl(): string {
    return writableSessionUrl(this.url);
  }

  /** What it holds; rejects with code 55000 when the database accepts no connections. */
  facts(): Promise<DatabaseRoleFacts> {
    return databaseFacts(this.writableUrl, this.config);
  }

  /** `default_transaction_read_only` for new client sessions. */
  setReadOnly(readOnly: boolean): Promise<void> {
    return setDatabaseReadOnly(this.clientConfig(), readOnly);
  }

  setConnectable(connectable: boolean): Promise<void> {
    return setDatabaseConnectable(this.clientConfig(), connectable);
  }

  dropCaptureSlot(timeoutMs: number): Promise<void> {
    return dropCaptureSlot(this.writableUrl, this.config, timeoutMs);
  }

  /** A switchover's fence: everything committed is published by the capture before it returns; `capturePids` are spared. */
  fenceForHandOver(capturePids: () => number[]): Promise<OldPrimaryState> {
    return fenceOldPrimary({
      config: this.clientConfig(),
      slot: this.config.capture.slot,
      publication: this.config.capture.publication,
      timeoutMs: 30_000,
      lastKnownSlotLag: async () => null,
      capturePids,
    });
  }

  /** Resolves once the server answers a query on another of its databases (this one may be fenced); rejects with why not. */
  async serverAnswers(): Promise<void> {
    const database = decodeURIComponent(new URL(this.url).pathname.slice(1));
    await onNeighbourDatabase(this.clientConfig(), database, (c) => c.query("SELECT 1"));
  }

  /** A stale primary's fence (see fenceStalePrimary). */
  fenceStale(): Promise<ZeroLossRelease> {
    return fenceStalePrimary(this.url, this.config);
  }

  /** The zero-loss setting naming a capture that stopped for good, reset (see releaseZeroLossOf). */
  releaseZeroLoss(): Promise<ZeroLossRelease> {
    return releaseZeroLossOf(this.url, this.config);
  }

  /**
   * Whether the server's commits wait for this database's capture now
   * (synchronous_standby_names), read before the capture starts: a primary
   * restarted in zero-loss mode is under it from its first commit, and its
   * first report must say so, not "off" until the capture's session has read it.
   */
  zeroLossInForce(): Promise<ZeroLossGuarantee> {
    return withDatabase(this.writableUrl, this.config, async (c) => {
      const slot = await resolveCaptureSlot(c, this.config.capture.slot);
      return (await readZeroLossState(c, slot)).guarantee;
    });
  }

  /** Its source identity (hex), which its standbys' positions name. */
  async sourceId(): Promise<string> {
    const identity = await withDatabase(this.writableUrl, this.config, (c) => identifySource(c));
    return computeSourceId(identity.systemIdentifier, identity.databaseName).toString(16);
  }

  private clientConfig() {
    return postgresClientConfig(this.url, this.config.standby?.tls);
  }
}
