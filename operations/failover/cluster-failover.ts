import type { Kafka } from "kafkajs";
import type { DiffrelayConfig } from "../../src/config/config-schema.js";
import { closeQuietly } from "../../src/errors/close-quietly.js";
import { partitionOffsets } from "../../src/kafka/topic-admin.js";
import { clusterDataTopics } from "../../src/kafka/topic-names.js";
import type { Logger } from "../../src/observability/logger.js";
import {
  type ChangeBase,
  type ClusterState,
  type ClusterStore,
  type ClusterView,
  changeBase,
  holdsBase,
  isReadyAt,
  memberNamed,
  nextEpoch,
} from "../cluster/index.js";
import { followLeases, type LeaseSight, waitForLapse } from "../lease/lapse-wait.js";
import { captureLastKnown } from "../promote/capture-last-known.js";
import { describePastEnd, publishedPastEnd } from "../promote/promote-runner.js";
import {
  FailoverDivergedError,
  FailoverRefusedError,
  fencedForHandOver,
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
  /**
   * The candidate's node's own sight of the leases (automatic failover): the
   * old primary's lapse is already known, and its health is not asked. Unset
   * (the command): the failover follows the leases from its start.
   */
  leaseSight?: LeaseSight;
  /** The TTL assumed for an old primary never seen renewing. */
  defaultLeaseTtlMs: number;
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
 * Failover of a cluster whose primary is gone, from whatever phase it is in:
 * a stable state, a change whose new primary serves (its command died before
 * `stable`), or a change that promoted nobody (a switchover that gave up, its
 * target dead; see changeBase). Refuses while a primary that serves answers
 * /healthz 200 (switch over instead). Claims the epoch above every claim (a
 * concurrent role change gets a conflict). When the old topic's end is not
 * known for certain (the old primary never fenced and may come back), it first
 * publishes phase `halting`, in which every standby stops applying, and takes
 * the end only once they have: nobody can apply what the old primary
 * publishes after it. Then phase `promoting` with that end: each node drains
 * to exactly it, the chosen one becomes the primary, the others follow it;
 * the old primary's node fences itself as a stale primary. Once they have, it
 * publishes `stable`, also when the old primary published past the end
 * (exit 4: the new primary serves; the old one's rejoin reports what only it
 * has), and returns what may be lost.
 */
export async function clusterFailover(options: ClusterFailoverOptions): Promise<ClusterFailoverReport> {
  const own = options.leaseSight ? null : await followLeases(options.store, options.defaultLeaseTtlMs);
  try {
    return await failover(options, options.leaseSight ?? (own as LeaseSight));
  } finally {
    await own?.stop();
  }
}

async function failover(options: ClusterFailoverOptions, leases: LeaseSight): Promise<ClusterFailoverReport> {
  const { store, to, cluster, logger } = options;
  const view = await store.read();
  const from = changeBase(view);
  if (!from)
    throw refusal(cluster, "no state yet: start its nodes (the one with --initial-primary bootstraps it)");
  const current = from.kind === "serving" ? from.state : from.base;
  refuseUnlessTarget(view, from, cluster, to);
  const oldPrimary = memberNamed(current, current.primary);
  const fenced = from.kind === "halted" && from.drainedEnd !== null;
  const health = fenced
    ? { healthy: false, reason: `it fenced itself for the role change to epoch ${from.stalled.epoch}` }
    : options.leaseSight
      ? { healthy: false, reason: "its lease lapsed (automatic failover)" }
      : await nodeHealth(oldPrimary?.apiUrl);
  if (health.healthy) {
    throw new FailoverRefusedError(
      `the primary ${current.primary} of cluster ${cluster} answers and its stream flows (${oldPrimary?.apiUrl}/healthz 200): ` +
        `failover is for a primary that is gone, and nothing was changed. Use diffrelay switchover --to ${to}`,
    );
  }
  if (from.kind === "halted" && from.stalled.phase === "promoting") {
    const target = memberNamed(from.stalled, from.stalled.primary);
    if ((await nodeHealth(target?.apiUrl)).healthy) {
      throw refusal(
        cluster,
        `the role change to epoch ${from.stalled.epoch} is promoting ${from.stalled.primary}, whose node answers: wait for it (diffrelay list); ` +
          `if it is stuck, stop ${from.stalled.primary}'s node and run failover again`,
      );
    }
  }
  const lastKnown = oldCaptureKnown(
    await captureLastKnown(oldPrimary ? `${oldPrimary.apiUrl}/status` : undefined),
    view.reports.get(current.primary),
    current.epoch,
  );
  const others = current.members.map((m) => m.name).filter((n) => n !== current.primary);
  const holding = others.filter((n) => holdsBase(view, from, n));
  // A node that holds the topic but does not answer is not waited for: it finds its part when it starts.
  const followers: string[] = [];
  for (const n of holding) if ((await nodeHealth(memberNamed(current, n)?.apiUrl)).healthy) followers.push(n);
  if (!followers.includes(to)) followers.push(to);
  const notFollowing = others.filter((n) => !followers.includes(n));

  const epoch = nextEpoch(view);
  await store.claimEpoch(epoch, `failover to ${to}`);
  const admin = options.kafka.admin();
  await admin.connect();
  try {
    const changing: ClusterState = {
      ...current,
      epoch,
      primary: to,
      phase: "halting",
      topics: clusterDataTopics(options.config, cluster, epoch),
      previous: {
        epoch: current.epoch,
        primary: current.primary,
        topics: current.topics,
        drainedEndOffset: from.kind === "halted" ? from.drainedEnd : null,
      },
      writtenBy: `failover to ${to}`,
      writtenAt: new Date().toISOString(),
    };
    if (changing.previous?.drainedEndOffset == null) {
      await store.publishState(changing);
      logger.info({ epoch, from: current.primary, to }, "failover: standbys stop applying");
      await store
        .waitFor(
          (v) => (followers.every((n) => halted(v, n, epoch)) ? true : undefined),
          options.settleTimeoutMs,
          `${followers.join(", ")} stopping their appliers for epoch ${epoch}`,
        )
        .catch((err: unknown) => {
          // Each node still checks that it holds exactly the end; one that applied past it stops, saying so.
          logger.warn({ err }, "failover: not every standby reported it stopped applying; going on");
        });
      // Until its lease lapses the old primary may still be serving (and, in zero-loss mode, releasing
      // commits it published): the end is taken only once it has fenced itself or lost the right to.
      const waitedMs = await waitForLapse(leases, current.primary, current.epoch, epoch);
      logger.info(
        { epoch, oldPrimary: current.primary, waitedMs },
        "failover: the old primary's lease has lapsed",
      );
    }
    // Everything the old capture had acknowledged is below this offset.
    const end = BigInt(
      changing.previous?.drainedEndOffset ?? (await partitionOffsets(admin, current.topics.data)).high,
    );
    const promoting: ClusterState = {
      ...changing,
      phase: "promoting",
      previous: {
        ...(changing.previous as NonNullable<ClusterState["previous"]>),
        drainedEndOffset: end.toString(),
      },
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
    // The new primary serves and its followers hold exactly the end: that is the cluster's state, whatever the old primary did.
    await store.publishState({ ...promoting, phase: "stable", writtenAt: new Date().toISOString() });
    const past = await publishedPastEnd(options.kafka, admin, current.topics.data, end);
    if (past !== null) {
      throw new FailoverDivergedError(
        `${to} is the primary of epoch ${epoch} (phase stable), but the old primary ${current.primary} published past the drained end: ` +
          `${describePastEnd(current.topics.data, end, past)} are on no other node; its node fences it and its rejoin lists them`,
      );
    }
    const loss =
      fencedForHandOver(view.reports.get(current.primary), current.epoch, end) ?? lossReport(lastKnown);
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

/** The node left its role of the epoch before: its applier stopped (switching at `epoch`), or it is past that. */
function halted(view: ClusterView, node: string, epoch: number): boolean {
  const report = view.reports.get(node);
  return report !== undefined && report.epoch >= epoch && report.role !== "standby";
}

async function nodeHealth(apiUrl: string | undefined): Promise<{ healthy: boolean; reason: string }> {
  if (!apiUrl) return { healthy: false, reason: "its node has no API URL" };
  try {
    const response = await fetch(`${apiUrl}/healthz`, { signal: AbortSignal.timeout(3000) });
    await response.body?.cancel();
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

function refuseUnlessTarget(view: ClusterView, from: ChangeBase, cluster: string, to: string): void {
  const refuse = (why: string) => refusal(cluster, why);
  const state = from.kind === "serving" ? from.state : from.base;
  if (!memberNamed(state, to))
    throw refuse(`node ${to} is not a member (members: ${state.members.map((m) => m.name).join(", ")})`);
  if (state.primary === to) throw refuse(`node ${to} is already the primary (epoch ${state.epoch})`);
  if (!holdsBase(view, from, to)) {
    const r = view.reports.get(to);
    throw refuse(
      `node ${to} is not a ready standby of epoch ${state.epoch} (it reports ${r ? `${r.role} of epoch ${r.epoch}` : "nothing"}): choose another with --to`,
    );
  }
}
