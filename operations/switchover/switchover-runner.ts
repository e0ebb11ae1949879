import type { DiffrelayConfig } from "../../src/config/config-schema.js";
import { DiffrelayError } from "../../src/errors/diffrelay-error.js";
import { clusterDataTopics } from "../../src/kafka/topic-names.js";
import type { Logger } from "../../src/observability/logger.js";
import {
  type ClusterState,
  type ClusterStore,
  type ClusterView,
  changeBase,
  isReadyAt,
  memberNamed,
  standbysOf,
} from "../cluster/index.js";

export interface SwitchoverOptions {
  config: DiffrelayConfig;
  store: ClusterStore;
  logger: Logger;
  cluster: string;
  to: string;
  /** How long the old primary may take to fence itself and report the old topic's end. */
  fenceTimeoutMs: number;
  /** How long the nodes may take, after that, to reach their new roles. */
  settleTimeoutMs: number;
}

export interface SwitchoverReport {
  cluster: string;
  fromEpoch: number;
  epoch: number;
  oldPrimary: string;
  newPrimary: string;
  /** Every change of the old epoch is below this offset of its topic, and on every node. */
  drainedEndOffset: string;
  fencedAt: string;
  writableAt: string;
  /** From the old primary's fence to the new primary accepting writes (both nodes' clocks). */
  writeUnavailableMs: number;
  /** Members that were not ready standbys when it started: they were not waited for and must be looked at. */
  notFollowing: string[];
  newTopic: string;
}

/** A switchover that was refused before anything changed (exit 3). */
export class SwitchoverRefusedError extends DiffrelayError {
  override readonly name = "SwitchoverRefusedError";

  constructor(message: string) {
    super("setup", message);
  }
}

/** A step of a switchover that began did not happen in time: the cluster stays mid-change. */
export class SwitchoverStalledError extends DiffrelayError {
  override readonly name = "SwitchoverStalledError";

  constructor(message: string, cause: unknown) {
    super("stalled", message, { cause });
  }
}

/**
 * Moves the primary role to a ready standby with nothing lost: claims the next
 * epoch (of two concurrent switchovers one gets it, the other changes
 * nothing), asks the old primary to fence itself, publishes the old topic's end
 * it reports, and waits until the new primary accepts writes and every node
 * that was following follows it. The nodes take the steps; this drives the phases.
 */
export async function switchover(options: SwitchoverOptions): Promise<SwitchoverReport> {
  const { store, to, cluster } = options;
  const view = await store.read();
  const current = refuseUnlessPossible(view, cluster, to);
  const { followers, notFollowing } = standbysOf(view, current);

  // The epoch right above the state read (compare-and-set): a concurrent role change that read the
  // same state, or one whose claim is in flight, claims the same one, and one of them gets a conflict.
  const epoch = current.epoch + 1;
  await store.claimEpoch(epoch, `switchover to ${to}`);
  const fencing: ClusterState = {
    ...current,
    epoch,
    primary: to,
    phase: "fencing",
    topics: clusterDataTopics(options.config, cluster, epoch),
    previous: {
      epoch: current.epoch,
      primary: current.primary,
      topics: current.topics,
      drainedEndOffset: null,
    },
    writtenBy: `switchover to ${to}`,
    writtenAt: new Date().toISOString(),
  };
  await store.publishState(fencing);
  options.logger.info({ epoch, from: current.primary, to }, "switchover: the old primary fences itself");

  const fenced = await store
    .waitFor(
      (v) => {
        const report = v.reports.get(current.primary);
        return report?.epoch === epoch && report.fencedEndOffset !== null && report.fencedAt !== null
          ? { endOffset: report.fencedEndOffset, at: report.fencedAt }
          : undefined;
      },
      options.fenceTimeoutMs,
      `the old primary ${current.primary} fencing itself for epoch ${epoch}`,
    )
    .catch((err: unknown) => {
      throw new SwitchoverStalledError(
        `switchover of cluster ${cluster} to ${to}: the old primary ${current.primary} did not fence itself within ${options.fenceTimeoutMs} ms. ` +
          `The cluster stays at epoch ${epoch}, phase fencing; its standbys go on applying ${current.topics.data}. ` +
          `If ${current.primary} is down, run diffrelay failover --cluster ${cluster} --to ${to}; if it is up, its node fences it once it reads the cluster state (see its /status and log)`,
        err,
      );
    });
  const promoting: ClusterState = {
    ...fencing,
    phase: "promoting",
    previous: {
      ...(fencing.previous as NonNullable<ClusterState["previous"]>),
      drainedEndOffset: fenced.endOffset,
    },
    writtenAt: new Date().toISOString(),
  };
  await store.publishState(promoting);
  options.logger.info(
    { epoch, drainedEndOffset: fenced.endOffset },
    "switchover: nodes drain and change roles",
  );

  const waitFor = [current.primary, ...followers];
  const writableAt = await store
    .waitFor(
      (v) => {
        const primary = v.reports.get(to);
        const ready =
          isReadyAt(v, to, epoch, "primary") &&
          waitFor.every((name) => name === to || isReadyAt(v, name, epoch, "standby"));
        return ready && primary?.writableAt ? primary.writableAt : undefined;
      },
      options.settleTimeoutMs,
      `${to} accepting writes as primary of epoch ${epoch} and ${waitFor.filter((n) => n !== to).join(", ")} following it`,
    )
    .catch((err: unknown) => {
      throw new SwitchoverStalledError(
        `switchover of cluster ${cluster} to ${to}: ${current.primary} fenced (everything it committed is in ${current.topics.data} below offset ${fenced.endOffset}), ` +
          `but the nodes did not reach their new roles within ${options.settleTimeoutMs} ms: cluster at epoch ${epoch}, phase promoting. ` +
          `See diffrelay list --cluster ${cluster} and the last error of each node that is not ready`,
        err,
      );
    });
  await store.publishState({ ...promoting, phase: "stable", writtenAt: new Date().toISOString() });
  return {
    cluster,
    fromEpoch: current.epoch,
    epoch,
    oldPrimary: current.primary,
    newPrimary: to,
    drainedEndOffset: fenced.endOffset,
    fencedAt: fenced.at,
    writableAt,
    writeUnavailableMs: Date.parse(writableAt) - Date.parse(fenced.at),
    notFollowing,
    newTopic: fencing.topics.data,
  };
}

function refuseUnlessPossible(view: ClusterView, cluster: string, to: string): ClusterState {
  const from = changeBase(view);
  if (!from) {
    throw new SwitchoverRefusedError(
      `cluster ${cluster} has no state yet: start its nodes (the one with --initial-primary bootstraps it)`,
    );
  }
  if (from.kind === "halted") {
    const s = from.stalled;
    throw new SwitchoverRefusedError(
      `cluster ${cluster} is in a role change to epoch ${s.epoch} (phase ${s.phase}, primary ${s.primary}) that promoted nobody yet: ` +
        `wait for it (diffrelay list); if it is stuck (its command gave up, or ${s.primary} is gone), ` +
        `diffrelay failover --cluster ${cluster} --to <a standby> ends it; nothing was changed`,
    );
  }
  // A change whose new primary serves, that its command never marked stable, is a state to start from.
  const state = from.state;
  if (!memberNamed(state, to)) {
    throw new SwitchoverRefusedError(
      `node ${to} is not a member of cluster ${cluster} (members: ${state.members.map((m) => m.name).join(", ")}); nothing was changed`,
    );
  }
  if (state.primary === to) {
    throw new SwitchoverRefusedError(
      `node ${to} is already the primary of cluster ${cluster} (epoch ${state.epoch}); nothing was changed`,
    );
  }
  if (!isReadyAt(view, to, state.epoch, "standby")) {
    const report = view.reports.get(to);
    throw new SwitchoverRefusedError(
      `node ${to} is not a ready standby of epoch ${state.epoch} (it reports ${report ? `${report.role} of epoch ${report.epoch}${report.lastError ? `, last error: ${report.lastError}` : ""}` : "nothing"}): fix it first; nothing was changed`,
    );
  }
  if (!isReadyAt(view, state.primary, state.epoch, "primary")) {
    throw new SwitchoverRefusedError(
      `the primary ${state.primary} does not report itself a ready primary of epoch ${state.epoch}: a switchover needs it to fence itself; use diffrelay failover when it is gone. Nothing was changed`,
    );
  }
  return state;
}
