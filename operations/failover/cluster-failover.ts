import type { Kafka } from "kafkajs";
import type { DiffrelayConfig } from "../../src/config/config-schema.js";
import { closeQuietly } from "../../src/errors/close-quietly.js";
import { partitionOffsets } from "../../src/kafka/topic-admin.js";
import { clusterDataTopics } from "../../src/kafka/topic-names.js";
import type { Logger } from "../../src/observability/logger.js";
import {
  type ClusterState,
  type ClusterStore,
  type ClusterView,
  isReadyAt,
  memberNamed,
  standbysOf,
} from "../cluster/index.js";
import { captureLastKnown } from "../promote/capture-last-known.js";
import { describePastEnd, publishedPastEnd } from "../promote/promote-runner.js";
import {
  FailoverDivergedError,
  FailoverRefusedError,
  lossReport,
  type MayBeLost,
  type OldCaptureKnown,
  oldCaptureKnown,
} from "./failover-loss.js";

export interface ClusterFailoverOptions {
  config: DiffrelayConfig;
  kafka: Kafka;
  store: ClusterStore;
  logger: Logger;
  cluster: string;
  to: string;
  /** How long the nodes may take to drain and reach their new roles. */
  settleTimeoutMs: number;
}

export interface ClusterFailoverReport {
  outcome: "promoted" | "promoted-possible-loss";
  cluster: string;
  fromEpoch: number;
  epoch: number;
  oldPrimary: { name: string; reachable: false; reason: string; lastKnown: OldCaptureKnown };
  newPrimary: string;
  /** Every node that follows drained the old topic to this offset, so they hold the same source position. */
  drainedEndOffset: string;
  mayBeLost: MayBeLost;
  /** Standbys of the old epoch now following the new primary. */
  following: string[];
  /** Members that were not ready standbys: neither waited for nor known to follow. */
  notFollowing: string[];
  newTopic: string;
}

/**
 * Failover of a cluster whose primary is gone: refuses while the primary's
 * node says its stream flows (/healthz 200: switch over instead), claims the
 * next epoch (a concurrent role change gets a conflict), and publishes it
 * straight in phase `promoting` with the old topic's end as the drained end.
 * Each ready standby drains to it, the chosen one becomes the primary, the
 * others follow it; the old primary's node, asked for no hand-over, fences
 * itself as a stale primary. Returns once they have, with what may be lost.
 */
export async function clusterFailover(options: ClusterFailoverOptions): Promise<ClusterFailoverReport> {
  const { store, to, cluster, logger } = options;
  const view = await store.read();
  const current = refuseUnlessPossible(view, cluster, to);
  const oldPrimary = memberNamed(current, current.primary);
  const health = await primaryHealth(oldPrimary?.apiUrl);
  if (health.healthy) {
    throw new FailoverRefusedError(
      `the primary ${current.primary} of cluster ${cluster} answers and its stream flows (${oldPrimary?.apiUrl}/healthz 200): ` +
        `failover is for a primary that is gone, and nothing was changed. Use diffrelay switchover --to ${to}`,
    );
  }
  const lastKnown = oldCaptureKnown(
    await captureLastKnown(oldPrimary ? `${oldPrimary.apiUrl}/status` : undefined),
    view.reports.get(current.primary),
    current.epoch,
  );
  const { followers, notFollowing } = standbysOf(view, current);

  const epoch = Math.max(view.highestClaim, current.epoch) + 1;
  await store.claimEpoch(epoch, `failover to ${to}`);
  const admin = options.kafka.admin();
  await admin.connect();
  try {
    // Everything the old capture had acknowledged is below this offset.
    const end = (await partitionOffsets(admin, current.topics.data)).high;
    const promoting: ClusterState = {
      ...current,
      epoch,
      primary: to,
      phase: "promoting",
      topics: clusterDataTopics(options.config, cluster, epoch),
      previous: {
        epoch: current.epoch,
        primary: current.primary,
        topics: current.topics,
        drainedEndOffset: end.toString(),
      },
      writtenBy: `failover to ${to}`,
      writtenAt: new Date().toISOString(),
    };
    await store.publishState(promoting);
    logger.info(
      { epoch, from: current.primary, to, drainedEndOffset: end.toString() },
      "failover: nodes drain and change roles",
    );

    await store.waitFor(
      (v) =>
        isReadyAt(v, to, epoch, "primary") &&
        followers.every((n) => n === to || isReadyAt(v, n, epoch, "standby"))
          ? true
          : undefined,
      options.settleTimeoutMs,
      `${to} accepting writes as primary of epoch ${epoch} and ${followers.filter((n) => n !== to).join(", ") || "no other node"} following it`,
    );
    const past = await publishedPastEnd(options.kafka, admin, current.topics.data, end);
    if (past !== null) {
      throw new FailoverDivergedError(
        `${to} is the primary of epoch ${epoch}, but the old primary ${current.primary} published past the drained end: ` +
          `${describePastEnd(current.topics.data, end, past)} are on no other node; its node must fence it and it must rejoin`,
      );
    }
    await store.publishState({ ...promoting, phase: "stable", writtenAt: new Date().toISOString() });
    const loss = lossReport(lastKnown);
    return {
      outcome: loss.acknowledgedCommits === "none" ? "promoted" : "promoted-possible-loss",
      cluster,
      fromEpoch: current.epoch,
      epoch,
      oldPrimary: { name: current.primary, reachable: false, reason: health.reason, lastKnown },
      newPrimary: to,
      drainedEndOffset: end.toString(),
      mayBeLost: loss,
      following: followers.filter((n) => n !== to),
      notFollowing,
      newTopic: promoting.topics.data,
    };
  } finally {
    await closeQuietly(admin.disconnect());
  }
}

async function primaryHealth(apiUrl: string | undefined): Promise<{ healthy: boolean; reason: string }> {
  if (!apiUrl) return { healthy: false, reason: "its node has no API URL" };
  try {
    const response = await fetch(`${apiUrl}/healthz`, { signal: AbortSignal.timeout(3000) });
    return response.status === 200
      ? { healthy: true, reason: "" }
      : {
          healthy: false,
          reason: `its node answers /healthz ${response.status}: its capture does not stream`,
        };
  } catch (err) {
    return { healthy: false, reason: `its node does not answer: ${(err as Error).message}` };
  }
}

const refusal = (cluster: string, why: string) =>
  new FailoverRefusedError(`cluster ${cluster}: ${why}; nothing was changed`);

function refuseUnlessPossible(view: ClusterView, cluster: string, to: string): ClusterState {
  const state = view.state;
  const refuse = (why: string) => refusal(cluster, why);
  if (!state) throw refuse("no state yet: start its nodes (the one with --initial-primary bootstraps it)");
  const base = stalledSwitchoverBase(view, state) ?? state;
  if (base.phase !== "stable")
    throw refuse(
      `a role change to epoch ${state.epoch} is under way (phase ${state.phase}): wait for it (diffrelay list)`,
    );
  return refuseUnlessTarget(view, cluster, base, to);
}

/**
 * A switchover whose old primary never fenced (it died, or its node did):
 * nothing has changed but the state, so the failover starts from the epoch
 * before it, as if the switchover had not begun. Once the old primary has
 * reported its fence, the switchover's promoting step is due instead.
 */
function stalledSwitchoverBase(view: ClusterView, state: ClusterState): ClusterState | undefined {
  const previous = state.previous;
  if (state.phase !== "fencing" || previous === null) return undefined;
  const report = view.reports.get(previous.primary);
  if (report?.epoch === state.epoch && report.fencedEndOffset !== null) return undefined;
  return {
    ...state,
    epoch: previous.epoch,
    primary: previous.primary,
    topics: previous.topics,
    phase: "stable",
    previous: null,
  };
}

function refuseUnlessTarget(
  view: ClusterView,
  cluster: string,
  state: ClusterState,
  to: string,
): ClusterState {
  const refuse = (why: string) => refusal(cluster, why);
  if (!memberNamed(state, to))
    throw refuse(`node ${to} is not a member (members: ${state.members.map((m) => m.name).join(", ")})`);
  if (state.primary === to) throw refuse(`node ${to} is already the primary (epoch ${state.epoch})`);
  if (!isReadyAt(view, to, state.epoch, "standby")) {
    const r = view.reports.get(to);
    throw refuse(
      `node ${to} is not a ready standby of epoch ${state.epoch} (it reports ${r ? `${r.role} of epoch ${r.epoch}` : "nothing"}): choose another with --to`,
    );
  }
  return state;
}
