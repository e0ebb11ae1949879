import type { Kafka } from "kafkajs";
import type pg from "pg";
import { resolveCaptureSlot, slotInfo } from "../../connectors/postgres-source/index.js";
import {
  latestRejoinReport,
  readPosition,
  requireOffsetInTopic,
} from "../../connectors/postgres-standby/index.js";
import { formatLsn } from "../../src/change/lsn.js";
import { withPgClient } from "../../src/config/postgres-connection.js";
import { closeQuietly } from "../../src/errors/close-quietly.js";
import { partitionOffsets } from "../../src/kafka/topic-admin.js";
import { redactError } from "../../src/observability/redact.js";
import {
  fetchStatus,
  type NodeStatus,
  nodeStatus,
  type StatusDocument,
  serviceReport,
  statusUrl,
} from "./process-status.js";

/** What `diffrelay status` reports, for one source and its standbys. */
export interface StatusReport {
  time: string;
  topic: string;
  source: {
    /** Unset: the default for the source's database. */
    slot: string | undefined;
    slotExists: boolean | null;
    slotActive: boolean | null;
    confirmedFlushLsn: string | null;
    slotLagBytes: number | null;
    /** The offset the next message will get. */
    topicEndOffset: string | null;
    lastError: string | null;
    /** The capture's report while it keeps failing the same way at one position, from its /status. */
    stalled: string | null;
    error: string | null;
  };
  standbys: StandbyStatus[];
  /** The HA cluster's nodes given with --node-urls, in that order. */
  nodes: NodeStatus[];
}

export interface StandbyStatus {
  name: string;
  nextOffset: string | null;
  lastCommitLsn: string | null;
  lastCommitTime: string | null;
  offsetLag: number | null;
  /** now − last commit time while behind the topic's end; 0 when caught up. */
  timeLagSeconds: number | null;
  lastError: string | null;
  /** The applier's report while it keeps failing the same way at one position, from its /status. */
  stalled: string | null;
  /** Why this standby could not be read (unreachable, never seeded), or why it cannot go on (a topic gap). */
  error: string | null;
  /** An old primary that rejoined onto this topic: what it had committed that never reached the new primary. */
  rejoined: { reportId: string; method: string; lostCommitLsns: string[] } | null;
}

export interface StatusOptions {
  sourceConfig: pg.ClientConfig | null;
  kafka: Kafka | null;
  topic: string;
  /** Unset: the default for the source's database. */
  slot: string | undefined;
  standbys: { name: string; config: pg.ClientConfig }[];
  /** The capture's /status URL, if known. */
  captureStatusUrl: string | null;
  /** Each applier's /status URL, if known; matched to standbys by the `standby` field it reports. */
  applyStatusUrls: string[];
  /**
   * The nodes' API URLs (or their /status URLs): each node's role, and the last errors of the capture or
   * applier it runs. A /status URL above may be a node's too.
   */
  nodeUrls: string[];
}

/** Status is a quick look: a server that does not answer within 5 s is reported, not waited for. */
const withClient = <T>(config: pg.ClientConfig, fn: (c: pg.Client) => Promise<T>) =>
  withPgClient({ ...config, connectionTimeoutMillis: 5000 }, fn);

/** "unknown" when no process URL was given or it did not answer; null when it reports no error. */
function lastErrorOf(doc: Record<string, unknown> | null | undefined): string | null {
  if (!doc) return "unknown";
  const e = doc.lastError;
  return typeof e === "string" ? e : null;
}

/** A process's stall, in one line: how often, where, since when. */
function stallOf(doc: Record<string, unknown> | null | undefined): string | null {
  const stall = doc?.stalled as { attempts?: number; position?: string; since?: string } | null | undefined;
  if (!stall || typeof stall !== "object") return null;
  return `${stall.attempts} identical failures in a row at ${stall.position} since ${stall.since}`;
}

export async function collectStatus(options: StatusOptions): Promise<StatusReport> {
  const report: StatusReport = {
    time: new Date().toISOString(),
    topic: options.topic,
    source: {
      slot: options.slot ?? "",
      slotExists: null,
      slotActive: null,
      confirmedFlushLsn: null,
      slotLagBytes: null,
      topicEndOffset: null,
      lastError: "unknown",
      stalled: null,
      error: null,
    },
    standbys: [],
    nodes: [],
  };
  const docOf = async (url: string) => serviceReport((await fetchStatus(statusUrl(url))).doc);
  const nodeUrls = options.nodeUrls.map(statusUrl);
  const [nodeDocs, givenCaptureDoc, givenApplyDocs] = await Promise.all([
    Promise.all(nodeUrls.map(fetchStatus)),
    options.captureStatusUrl ? docOf(options.captureStatusUrl) : Promise.resolve(null),
    Promise.all(options.applyStatusUrls.map(docOf)),
  ]);
  report.nodes = nodeUrls.map((url, i) => nodeStatus(url, nodeDocs[i] ?? { doc: null, error: "not read" }));
  // What the nodes run: the primary's capture, the standbys' appliers.
  const services = nodeDocs.map((f) => (f.doc?.role === "node" ? serviceReport(f.doc) : null));
  const ofRole = (role: string) => services.filter((d): d is StatusDocument => d?.role === role);
  const captureDoc = givenCaptureDoc ?? ofRole("capture")[0] ?? null;
  const applyDocs = [...givenApplyDocs, ...ofRole("apply")];
  report.source.lastError = lastErrorOf(captureDoc);
  report.source.stalled = stallOf(captureDoc);
  const sourceProblems: string[] = [];
  if (options.sourceConfig) {
    try {
      const slot = await withClient(options.sourceConfig, async (c) => {
        report.source.slot = await resolveCaptureSlot(c, options.slot);
        return slotInfo(c, report.source.slot);
      });
      report.source.slotExists = slot.exists;
      report.source.slotActive = slot.active;
      report.source.confirmedFlushLsn =
        slot.confirmedFlushLsn === null ? null : formatLsn(slot.confirmedFlushLsn);
      report.source.slotLagBytes = slot.lagBytes === null ? null : Number(slot.lagBytes);
    } catch (err) {
      sourceProblems.push(`source: ${redactError(err)}`);
    }
  }
  let end: bigint | null = null;
  let offsets: { low: bigint; high: bigint } | null = null;
  if (options.kafka) {
    const admin = options.kafka.admin();
    try {
      await admin.connect();
      offsets = await partitionOffsets(admin, options.topic);
      end = offsets.high;
      report.source.topicEndOffset = end.toString();
    } catch (err) {
      sourceProblems.push(`topic: ${redactError(err)}`);
    } finally {
      await closeQuietly(admin.disconnect());
    }
  }
  report.source.error = sourceProblems.length ? sourceProblems.join("; ") : null;

  const nowMs = Date.now();
  report.standbys = await Promise.all(
    options.standbys.map(async (s): Promise<StandbyStatus> => {
      const doc = applyDocs.find((d) => d?.standby === s.name);
      const status: StandbyStatus = {
        name: s.name,
        nextOffset: null,
        lastCommitLsn: null,
        lastCommitTime: null,
        offsetLag: null,
        timeLagSeconds: null,
        lastError: lastErrorOf(doc),
        stalled: stallOf(doc),
        error: null,
        rejoined: null,
      };
      try {
        const [position, rejoin] = await withClient(
          s.config,
          async (c) =>
            [
              await readPosition(c, options.topic, 0),
              // Before migrations/standby/004 there is no such table: nothing rejoined there.
              await latestRejoinReport(c, options.topic).catch((err: { code?: string }) => {
                if (err.code === "42P01") return null;
                throw err;
              }),
            ] as const,
        );
        if (rejoin) {
          const report = rejoin.report as { method?: string; unpublished?: { commitLsn: string }[] };
          status.rejoined = {
            reportId: rejoin.id,
            method: String(report.method),
            lostCommitLsns: (report.unpublished ?? []).map((t) => t.commitLsn),
          };
        }
        if (!position) {
          status.error = "no position for this topic (not seeded or never applied)";
          return status;
        }
        const next = position.nextOffset;
        const commitMs =
          position.lastCommitTimeMicros === null ? null : Number(position.lastCommitTimeMicros) / 1000;
        status.nextOffset = next.toString();
        // Found here too, so the gap is named even once the applier that found it has exited.
        if (offsets !== null) {
          try {
            requireOffsetInTopic(options.topic, 0, next, offsets);
          } catch (gap) {
            status.error = (gap as Error).message;
          }
        }
        status.lastCommitLsn = formatLsn(position.lastCommitLsn);
        status.lastCommitTime = commitMs === null ? null : new Date(commitMs).toISOString();
        if (end !== null) {
          const lag = end > next ? Number(end - next) : 0;
          status.offsetLag = lag;
          status.timeLagSeconds =
            lag === 0 ? 0 : commitMs === null ? null : Math.max(0, (nowMs - commitMs) / 1000);
        }
      } catch (err) {
        status.error =
          (err as { code?: string }).code === "42P01"
            ? "no diffrelay schema (not seeded or never applied)"
            : redactError(err);
      }
      return status;
    }),
  );
  return report;
}
