import { z } from "zod";

/** A node of the cluster: its name and the URL of its HTTP API (/status, /primary, /replica). */
const memberSchema = z.object({ name: z.string().min(1), apiUrl: z.string().min(1) });

const topicsSchema = z.object({ data: z.string().min(1), schemas: z.string().min(1) });

/**
 * Where a cluster is in a role change of epoch `epoch`:
 * - `stable`: `primary` captures to `topics`, every other member applies it.
 * - `fencing`: the previous primary makes its database read-only and lets its
 *   capture publish everything it committed; it then reports the old topic's end.
 * - `halting`: a failover's first step when the old primary never fenced:
 *   every standby stops applying, before the old topic's end is taken.
 * - `promoting`: `previous.drainedEndOffset` is known; every member drains the
 *   old topic to it, `primary` becomes the source of `topics`, the others follow it.
 * Other phases may be added by other role changes (failover); a node that does
 * not know a phase keeps its current role and reports it.
 */
export const clusterPhaseSchema = z.string().min(1);
export type ClusterPhase = "stable" | "fencing" | "halting" | "promoting" | (string & {});

export const clusterStateSchema = z.object({
  cluster: z.string().min(1),
  epoch: z.number().int().nonnegative(),
  primary: z.string().min(1),
  members: z.array(memberSchema).min(1),
  phase: clusterPhaseSchema,
  /** The data topic (and its schema topic) of this epoch. */
  topics: topicsSchema,
  /** The epoch this one took over from; null for the first. */
  previous: z
    .object({
      epoch: z.number().int().nonnegative(),
      primary: z.string().min(1),
      topics: topicsSchema,
      /** Every change of the previous epoch is below this offset of its topic; null until known. */
      drainedEndOffset: z
        .string()
        .regex(/^[0-9]+$/)
        .nullable(),
    })
    .nullable(),
  /** Who wrote this record (a node or a command) and when (ISO 8601). */
  writtenBy: z.string().min(1),
  writtenAt: z.string().min(1),
});
export type ClusterState = z.infer<typeof clusterStateSchema> & { phase: ClusterPhase };
export type ClusterMember = z.infer<typeof memberSchema>;

/**
 * What a node's automatic rejoin found and did, as its report carries it: the
 * old primary's transactions that never reached the new primary (commit LSN,
 * xid, tables and keys), at most a bounded number of changes of them; the
 * whole list is in `diffrelay.rejoin_report` (`reportId`) on the node's
 * database and in its log.
 */
const rejoinSummarySchema = z.object({
  /** `rejoining`: under way; `rejoined`: it follows the new primary; `failed`: it stays fenced (`error`). */
  state: z.enum(["rejoining", "rejoined", "failed"]),
  /** The epoch whose primary it rejoined (or tried to). */
  epoch: z.number().int().nonnegative(),
  /** rewind (the unpublished transactions undone), reseed (a full copy; reasons), already-rejoined. */
  method: z.string().nullable(),
  reseedReasons: z.array(z.string()),
  /** Transactions the old primary committed that the new primary does not hold. */
  unpublishedTotal: z.number().int().nonnegative().nullable(),
  unpublished: z.array(
    z.object({
      commitLsn: z.string(),
      xid: z.number(),
      commitTime: z.string(),
      changes: z.array(
        z.object({
          op: z.enum(["insert", "update", "delete"]),
          table: z.string(),
          key: z.record(z.string(), z.string().nullable()),
          newKey: z.record(z.string(), z.string().nullable()).optional(),
        }),
      ),
      /** Changes of this transaction left out of `changes` to keep the record small. */
      changesLeftOut: z.number().int().nonnegative(),
      truncated: z.array(z.string()),
      ddl: z.array(z.string()),
    }),
  ),
  /** Transactions left out of `unpublished` to keep the record small. */
  transactionsLeftOut: z.number().int().nonnegative(),
  reportId: z.string().nullable(),
  error: z.string().nullable(),
  at: z.string().min(1),
});
export type RejoinSummary = z.infer<typeof rejoinSummarySchema>;

/**
 * A primary's capture as its node last reported it, so that a failover knows
 * it without the old primary (a machine death takes its node too).
 */
const reportedCaptureSchema = z.object({
  /** Whether the server's commits wait for the capture: `required` is zero-loss mode (no acknowledged commit can be lost). */
  zeroLoss: z.enum(["required", "optional", "off"]),
  /** Its walsender's sync_state (`sync`: the synchronous standby commits wait for); null when not connected. */
  syncState: z.string().nullable(),
  /** WAL the capture had not confirmed, as of the walsender's last keepalive (a lower bound). */
  slotLagBytes: z.number().nullable(),
  confirmedLsn: z.string().nullable(),
});
export type ReportedCapture = z.infer<typeof reportedCaptureSchema>;

/** What a report carries of a capture's status: these fields, nothing else. */
export function reportedCapture(status: ReportedCapture): ReportedCapture {
  const { zeroLoss, syncState, slotLagBytes, confirmedLsn } = status;
  return { zeroLoss, syncState, slotLagBytes, confirmedLsn };
}

/**
 * A node's own account of itself, published whenever it changes. `epoch` is the
 * epoch the node acts on; `ready` says it has reached its role of that epoch.
 */
export const nodeReportSchema = z.object({
  node: z.string().min(1),
  epoch: z.number().int().nonnegative(),
  /** `switching`: between roles in a change to `epoch`; `fenced`: left behind, its database refusing writes (see `rejoin`). */
  role: z.enum(["primary", "standby", "switching", "fenced", "starting"]),
  ready: z.boolean(),
  /** The previous epoch's topic end, reported by a primary that fenced itself for a switchover. */
  fencedEndOffset: z
    .string()
    .regex(/^[0-9]+$/)
    .nullable(),
  /** When it stopped accepting writes (fenced) or started accepting them (primary), ISO 8601. */
  fencedAt: z.string().nullable(),
  writableAt: z.string().nullable(),
  /** The primary's source identity (hex), which its standbys' positions name. */
  sourceId: z.string().nullable(),
  /** Milliseconds behind the primary's last commit, for a standby; null when unknown. */
  lagMs: z.number().nullable(),
  lastError: z.string().nullable(),
  /**
   * The node's database as the other nodes reach it, without user and password
   * (a rejoining old primary connects to the new primary's with its own); absent in older reports.
   */
  databaseUrl: z.string().nullable().optional(),
  /** The node's latest automatic rejoin; absent or null when it never rejoined. */
  rejoin: rejoinSummarySchema.nullable().optional(),
  /** A primary's capture (null for other roles; absent in older reports). */
  capture: reportedCaptureSchema.nullable().optional(),
  /** Automatic failover: 0 never makes this node a candidate; higher first (absent in older reports: 1). */
  failoverPriority: z.number().int().nonnegative().optional(),
  /** False: this node never starts an election (--manual-failover); absent in older reports: true. */
  autoFailover: z.boolean().optional(),
  /** A standby's next offset on its epoch's topic, which ranks the candidates of an election; null when unknown. */
  appliedOffset: z
    .string()
    .regex(/^[0-9]+$/)
    .nullable()
    .optional(),
  at: z.string().min(1),
});
export type NodeReport = z.infer<typeof nodeReportSchema>;

/**
 * A renewal of the primary's lease (operations/lease). `incarnation` names the
 * node process and `seq` counts its renewals, so that any new renewal is a new
 * value; only its arrival time on the reader's own clock matters, never the
 * writer's clock (`renewedAt` is for people).
 */
export const leaseRecordSchema = z.object({
  holder: z.string().min(1),
  epoch: z.number().int().nonnegative(),
  incarnation: z.string().min(1),
  seq: z.number().int().nonnegative(),
  /** The standbys elect when they have seen no renewal for this long. */
  ttlMs: z.number().int().positive(),
  renewedAt: z.string().min(1),
});
export type LeaseRecord = z.infer<typeof leaseRecordSchema>;

/** Everything the cluster topic says, as of one read. */
export interface ClusterView {
  /** The state of the highest epoch that is both claimed and published; null before bootstrap. */
  state: ClusterState | null;
  /**
   * The latest state of every epoch that is both claimed and published, by
   * epoch: each names its topics and the epoch it took over from, which is how
   * a node that missed role changes finds the chain of topics to follow.
   */
  states: ReadonlyMap<number, ClusterState>;
  /** The highest claimed epoch, -1 when none is: a role change may be under way above `state.epoch`. */
  highestClaim: number;
  /** Every claimed epoch, lowest first (claims are never removed). */
  claims: readonly number[];
  /** The latest report of each node, by name. */
  reports: ReadonlyMap<string, NodeReport>;
  /** The latest lease renewal of each node that held the lease, by name. */
  leases: ReadonlyMap<string, LeaseRecord>;
}

export type ClusterRecord =
  | { type: "state"; state: ClusterState }
  | { type: "report"; report: NodeReport }
  | { type: "lease"; lease: LeaseRecord };

const STATE_KEY = /^epoch\/(0|[1-9][0-9]*)$/;
const REPORT_KEY = /^node\/(.+)$/;
const LEASE_KEY = /^lease\/(.+)$/;

/** One state record per epoch (compaction keeps the last phase of each), one report and one lease renewal per node. */
export function recordKey(record: ClusterRecord): string {
  switch (record.type) {
    case "state":
      return `epoch/${record.state.epoch}`;
    case "report":
      return `node/${record.report.node}`;
    case "lease":
      return `lease/${record.lease.holder}`;
  }
}

/** The record a key and value hold, or an Error saying what is wrong with them. */
export function decodeRecord(key: string, value: string): ClusterRecord | Error {
  let json: unknown;
  try {
    json = JSON.parse(value);
  } catch (err) {
    return new Error(`not JSON: ${(err as Error).message}`);
  }
  if (STATE_KEY.test(key)) {
    const parsed = clusterStateSchema.safeParse(json);
    if (!parsed.success) return new Error(`not a cluster state: ${parsed.error.message}`);
    if (`epoch/${parsed.data.epoch}` !== key) return new Error(`key ${key} holds epoch ${parsed.data.epoch}`);
    return { type: "state", state: parsed.data };
  }
  if (REPORT_KEY.test(key)) {
    const parsed = nodeReportSchema.safeParse(json);
    if (!parsed.success) return new Error(`not a node report: ${parsed.error.message}`);
    if (`node/${parsed.data.node}` !== key) return new Error(`key ${key} holds node ${parsed.data.node}`);
    return { type: "report", report: parsed.data };
  }
  if (LEASE_KEY.test(key)) {
    const parsed = leaseRecordSchema.safeParse(json);
    if (!parsed.success) return new Error(`not a lease renewal: ${parsed.error.message}`);
    if (`lease/${parsed.data.holder}` !== key)
      return new Error(`key ${key} holds holder ${parsed.data.holder}`);
    return { type: "lease", lease: parsed.data };
  }
  return new Error(`unknown key ${key}`);
}

export function encodeRecord(record: ClusterRecord): { key: string; value: string } {
  const value =
    record.type === "state" ? record.state : record.type === "report" ? record.report : record.lease;
  return { key: recordKey(record), value: JSON.stringify(value) };
}

/** The member of that name, or undefined. */
export function memberNamed(state: ClusterState, name: string): ClusterMember | undefined {
  return state.members.find((m) => m.name === name);
}

/** Nodes report every 5 s: an older report is from a node that may be gone. */
export const FRESH_REPORT_MS = 20_000;

/** The node's latest report is fresh and says it has reached `role` at `epoch`. */
export function isReadyAt(
  view: ClusterView,
  node: string,
  epoch: number,
  role: "primary" | "standby",
): boolean {
  const report = view.reports.get(node);
  return (
    report?.epoch === epoch &&
    report.role === role &&
    report.ready &&
    Date.now() - Date.parse(report.at) < FRESH_REPORT_MS
  );
}

/** The members other than the primary that are ready standbys of the state's epoch, and the others. */
export function standbysOf(
  view: ClusterView,
  state: ClusterState,
): { followers: string[]; notFollowing: string[] } {
  const others = state.members.map((m) => m.name).filter((name) => name !== state.primary);
  const followers = others.filter((name) => isReadyAt(view, name, state.epoch, "standby"));
  return { followers, notFollowing: others.filter((name) => !followers.includes(name)) };
}
