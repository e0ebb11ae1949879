import type { ClusterState, ClusterView } from "../cluster/index.js";

/**
 * A role change that shows no progress for this long is taken as abandoned: an election supersedes it
 * (operations/lease), or, when its new primary already serves, that primary marks it stable itself.
 */
export const STALLED_CHANGE_MS = 30_000;

/** The role a node holds now, as its loop carries it out. */
export type NodeRole =
  | { kind: "starting" }
  | { kind: "primary"; epoch: number }
  | { kind: "standby"; epoch: number }
  /** Between roles, during the change from epoch `from` to `epoch`: neither capturing nor applying. */
  | { kind: "switching"; from: number; epoch: number }
  | { kind: "fenced"; epoch: number };

/** What a starting node found in its own database, for the state it starts into. */
export interface DatabaseObservation {
  /** False: the database refuses every connection (fenced as an old primary earlier). */
  connectable: boolean;
  /** The capture's slot exists: this database was a source. */
  hasCaptureSlot: boolean;
  /** The standby's next offset on the state's topic, null without a position. */
  positionOnCurrent: bigint | null;
  /** The standby's next offset on the previous epoch's topic, null without one (or no previous epoch). */
  positionOnPrevious: bigint | null;
}

/** Everything a node's next step depends on: nothing else is read, so the same inputs give the same step. */
export interface RoleInputs {
  me: string;
  role: NodeRole;
  /** null until the cluster topic was read to its end. */
  view: ClusterView | null;
  /** A starting node's look at its database; null when not looked at (yet). */
  database: DatabaseObservation | null;
  /** The hand-over this node made as the primary of epoch `from`: its database holds exactly that topic below `end`. */
  handedOver: { from: number; end: bigint } | null;
  /** The node that bootstraps a cluster without state, and the epoch it would claim. */
  initialPrimary: string | undefined;
  bootstrapEpoch: number;
  autoRejoin: boolean;
  /** The last failed rejoin: its cluster epoch, and when it may be tried again (null: not at this epoch). */
  rejoinFailed: { epoch: number; retryAt: number | null } | null;
  /** Milliseconds since the epoch (Date.now()): the reports' ages are observations too. */
  now: number;
}

export type RoleStep =
  | {
      kind: "wait";
      why: string;
      /** How long the current primary's report has been silent (ms), null without a state or report. */
      primarySilentMs: number | null;
    }
  /** Publish the first state, this node its primary; `claim`: claim the epoch first (else an earlier bootstrap's claim is finished). */
  | { kind: "bootstrap"; epoch: number; claim: boolean }
  /** A starting node must look at its database before it can decide. */
  | { kind: "observe-database"; state: ClusterState }
  | { kind: "start-primary"; state: ClusterState }
  | { kind: "start-standby"; state: ClusterState }
  /** Fence for a switchover, report the old topic's end, then follow the new primary. */
  | { kind: "hand-over"; state: ClusterState }
  /** Drain the previous epoch's topic to exactly its end, then become the primary or follow it. */
  | { kind: "follow-change"; state: ClusterState }
  /** The old primary that handed over at `end`: check the drained end is that, then follow. */
  | { kind: "follow-after-hand-over"; state: ClusterState; end: bigint }
  | { kind: "fence"; state: ClusterState; why: string }
  | { kind: "rejoin"; state: ClusterState }
  /**
   * A standby that missed role changes (down, or cut off, while the cluster moved on): follow the chain of
   * epochs since its own to the current topic (operations/rejoin), re-seeded when the chain cannot be followed.
   */
  | { kind: "catch-up"; state: ClusterState }
  /** Mark the change that made this node the primary stable: its command (or election) ended before doing so. */
  | { kind: "finish-change"; state: ClusterState }
  /** Nothing this node may do is safe: stop, saying why and what to do (exit 3). */
  | { kind: "fail"; message: string };

/** The node's next step: a pure function of its inputs. */
export function decideStep(inputs: RoleInputs): RoleStep {
  const { me, role, view } = inputs;
  if (view === null) return wait("the cluster topic is not read to its end yet", null);
  const state = view.state;
  if (state === null) return bootstrapStep(inputs, view);
  switch (role.kind) {
    case "fenced":
      if (!inputs.autoRejoin)
        return wait(`fenced, automatic rejoin off: ${me} waits for diffrelay rejoin`, null);
      if (inputs.rejoinFailed?.epoch === state.epoch) {
        const { retryAt } = inputs.rejoinFailed;
        if (retryAt === null)
          return wait(
            `fenced: its rejoin at epoch ${state.epoch} failed; it tries again at a later epoch or restart`,
            null,
          );
        if (inputs.now < retryAt)
          return wait(
            `fenced: its rejoin at epoch ${state.epoch} failed on a server that did not answer; it tries again in ${retryAt - inputs.now} ms`,
            null,
          );
      }
      return { kind: "rejoin", state };
    case "primary":
    case "standby":
    case "switching":
      if (role.epoch === state.epoch) {
        if (role.kind === "primary" && abandonedPromotion(inputs, state))
          return { kind: "finish-change", state };
        return wait(`${role.kind} of epoch ${state.epoch}`, silentMs(inputs, state));
      }
      break;
    case "starting":
      return startingStep(inputs, view, state);
  }
  if (role.kind === "primary") {
    // Only a switchover asks the primary to hand over (phase fencing): after a failover the cluster
    // drained without it, so what it committed since is on no other node and it must not follow as is.
    const previous = state.previous;
    if (state.phase === "fencing" && previous?.epoch === role.epoch && previous.primary === me)
      return { kind: "hand-over", state };
    return {
      kind: "fence",
      state,
      why: `node ${me} was the primary of epoch ${role.epoch}, but the cluster is at epoch ${state.epoch} with primary ${state.primary}`,
    };
  }
  const from = role.kind === "standby" ? role.epoch : role.from;
  const previous = state.previous;
  if (previous && previous.epoch === from) {
    if (previous.primary !== me) return { kind: "follow-change", state };
    if (inputs.handedOver?.from === from)
      return { kind: "follow-after-hand-over", state, end: inputs.handedOver.end };
  }
  if (previous?.primary === me) {
    // It was to become (or was) the primary the cluster has since left: its database may hold writes
    // no topic has, which only a stale primary's rejoin finds.
    return {
      kind: "fail",
      message: `node ${me} is switching from epoch ${from}, but the cluster is at epoch ${state.epoch} whose previous primary was ${me} itself, without a hand-over it knows of: what its database holds past the topics is unknown; run diffrelay rejoin --cluster ${state.cluster} --standby-name ${me} … (it reports and undoes what never reached a topic), then start the node again`,
    };
  }
  return { kind: "catch-up", state };
}

function bootstrapStep(inputs: RoleInputs, view: ClusterView): RoleStep {
  if (inputs.initialPrimary !== inputs.me)
    return wait("the cluster has no state yet: the node named by --initial-primary bootstraps it", null);
  // A claim without any state can only be an earlier bootstrap's that died before publishing
  // (every other claimant starts from a state): its epoch is published.
  if (view.claims.length > 1) {
    return {
      kind: "fail",
      message:
        `epochs ${view.claims.join(", ")} are claimed but the cluster topic holds no state: its states were lost (the topic deleted or recreated), ` +
        `so no node can know the primary; node ${inputs.me} does not bootstrap over it. Recreate the cluster under a new --cluster name, its first primary the node that was primary last`,
    };
  }
  const claimed = view.claims[0];
  return claimed === undefined
    ? { kind: "bootstrap", epoch: inputs.bootstrapEpoch, claim: true }
    : { kind: "bootstrap", epoch: claimed, claim: false };
}

/** A node process starting: the role the state gives this database. */
function startingStep(inputs: RoleInputs, view: ClusterView, state: ClusterState): RoleStep {
  const { me, database } = inputs;
  if (database === null) return { kind: "observe-database", state };
  const mine = view.reports.get(me);
  // A change that made this node its primary but was never marked stable (its command died): it serves.
  const promoted = mine?.epoch === state.epoch && mine.role === "primary" && mine.writableAt !== null;
  // A primary's database refuses connections after its node stopped, lost its lease or died (the
  // watchdog's fence): it serves again once it holds the lease, which only the current primary can.
  if (state.primary === me && (state.phase === "stable" || promoted)) return { kind: "start-primary", state };
  if (!database.connectable) {
    if (state.primary === me) {
      return {
        kind: "fail",
        message: `node ${me}'s database accepts no connections, and the cluster's role change to epoch ${state.epoch} (phase ${state.phase}) is making it the primary: it did not finish. Run diffrelay failover --cluster ${state.cluster} --to <a standby>, or ALTER DATABASE … ALLOW_CONNECTIONS true (from another database) and start the node again`,
      };
    }
    return {
      kind: "fence",
      state,
      why: `node ${me}'s database accepts no connections (fenced as an old primary earlier), and the cluster is at epoch ${state.epoch} with primary ${state.primary}`,
    };
  }
  if (database.positionOnCurrent !== null) return { kind: "start-standby", state };
  const previous = state.previous;
  if (previous && database.positionOnPrevious !== null) return { kind: "follow-change", state };
  if (previous?.primary === me && mine?.fencedEndOffset && mine.epoch > previous.epoch) {
    // This node handed over as the previous epoch's primary and stopped before following:
    // its own report says where it fenced, which its database holds exactly.
    return { kind: "follow-after-hand-over", state, end: BigInt(mine.fencedEndOffset) };
  }
  if (database.hasCaptureSlot) {
    return {
      kind: "fence",
      state,
      why: `node ${me}'s database holds the capture's slot (it was a primary), but the cluster is at epoch ${state.epoch} with primary ${state.primary} and this database is no standby of it`,
    };
  }
  // No position on the current or previous topic: an older epoch's, or none (then catch-up refuses with the seed command).
  return { kind: "catch-up", state };
}

/**
 * A failover's state left at `promoting` although its new primary (this node) took writes STALLED_CHANGE_MS
 * ago: the command or election that published it died before `stable` (it marks it once the followers are
 * ready; its own wait is longer, and a second `stable` of the same state changes nothing). Nobody else
 * would finish it: the primary serves, so no election supersedes it.
 */
function abandonedPromotion(inputs: RoleInputs, state: ClusterState): boolean {
  if (state.phase !== "promoting" || state.primary !== inputs.me) return false;
  const writableAt = inputs.view?.reports.get(inputs.me)?.writableAt;
  return writableAt != null && inputs.now - Date.parse(writableAt) >= STALLED_CHANGE_MS;
}

function wait(why: string, primarySilentMs: number | null): RoleStep {
  return { kind: "wait", why, primarySilentMs };
}

function silentMs(inputs: RoleInputs, state: ClusterState): number | null {
  const report = inputs.view?.reports.get(state.primary);
  return report ? Math.max(0, inputs.now - Date.parse(report.at)) : null;
}
