import type { SourceTopics } from "../../src/kafka/topic-names.js";
import type { ClusterState } from "../cluster/index.js";

/** One epoch's topic on the way from a node's epoch to the cluster's, and the part of it to apply. */
export interface ChainLink {
  epoch: number;
  topics: SourceTopics;
  /** The offset applying starts at: the node's position on its own epoch's topic, 0 on every later one. */
  from: bigint;
  /**
   * Every change of this epoch is below this offset (the next epoch's
   * drainedEndOffset): it is applied exactly to here, checked, before the
   * next link. Null for the last link, whose topic the applier then follows.
   */
  end: bigint | null;
}

/**
 * How a database that holds the cluster's data as of `from` reaches the
 * cluster's current epoch: the links in epoch order, the first being the
 * node's own epoch, the last the target epoch (whose applier then runs). Or,
 * when the chain cannot be followed, why: the node must be re-seeded.
 */
export type EpochChain =
  | { kind: "follow"; target: ChainTarget; links: ChainLink[] }
  | { kind: "reseed"; target: ChainTarget; reasons: string[] };

/** The epoch whose topic the node follows in the end, and its primary (a re-seed copies from it). */
export interface ChainTarget {
  epoch: number;
  primary: string;
  topics: SourceTopics;
}

export interface EpochChainInput {
  /** The latest state of every claimed and published epoch (ClusterView.states). */
  states: ReadonlyMap<number, ClusterState>;
  /** The cluster's current state (ClusterView.state). */
  current: ClusterState;
  /**
   * Where the database is: `offset` is its position (next offset) on the
   * topic of `epoch`; null when it was that epoch's primary, so it holds that
   * topic as drained (after the rewind of what it never published).
   */
  from: { epoch: number; offset: bigint | null };
  /** The first offset each topic still holds (Kafka's low watermark); a topic absent here no longer exists. */
  lowOffsets: ReadonlyMap<string, bigint>;
}

/**
 * The chain of epochs from the database's epoch to the cluster's, built from
 * the epochs' own records by following each one's `previous` back from the
 * current state: a later role change may supersede one that never finished
 * (a failover out of a stalled switchover names the epoch before it), so
 * epoch numbers alone do not make the chain. A role change under way whose
 * old topic's end is not yet known (phase fencing) ends the chain at the
 * epoch it leaves: the node follows that one and then takes part in the
 * change like any standby.
 *
 * Re-seed, with every reason, when: an epoch on the way has no record (a
 * gap), or its record does not name the epoch before it, or says where that
 * epoch's topic ends; the database's epoch is not on the chain (its role
 * change was superseded, so what it holds of that epoch is on no node of the
 * chain); its position is past its topic's drained end (it applied changes
 * no later epoch holds); or Kafka's retention no longer holds a part of a
 * topic it must apply (or the topic is gone).
 */
export function epochChain(input: EpochChainInput): EpochChain {
  const { states, current, from } = input;
  const target = chainTarget(states, current);
  const reasons: string[] = [];
  const reseed = (why: string[]): EpochChain => ({ kind: "reseed", target: targetOf(target), reasons: why });
  const links: ChainLink[] = [{ epoch: target.epoch, topics: target.topics, from: 0n, end: null }];
  let epoch = target.epoch;
  let previous = target.previous;
  const walked = [epoch];
  while (epoch !== from.epoch) {
    if (!previous) {
      reasons.push(
        `epoch ${from.epoch} is not on the chain of epochs the cluster's epoch ${target.epoch} descends from (${walked.join(" ← ")}, the first of them): ` +
          `what this database holds of epoch ${from.epoch} is on no node of the cluster`,
      );
      break;
    }
    if (previous.epoch < from.epoch) {
      reasons.push(
        `epoch ${from.epoch} is not on the chain of epochs the cluster's epoch ${target.epoch} descends from (${[...walked, previous.epoch].join(" ← ")}): ` +
          `its role change was superseded, so what this database holds of epoch ${from.epoch} is on no node of the cluster`,
      );
      break;
    }
    if (previous.drainedEndOffset === null) {
      reasons.push(
        `epoch ${epoch}'s record does not say where epoch ${previous.epoch}'s topic ${previous.topics.data} ends (its drainedEndOffset is unknown): ` +
          "what the next epoch started from cannot be told",
      );
      break;
    }
    links.unshift({
      epoch: previous.epoch,
      topics: previous.topics,
      from: 0n,
      end: BigInt(previous.drainedEndOffset),
    });
    walked.push(previous.epoch);
    if (previous.epoch === from.epoch) break;
    const record = states.get(previous.epoch);
    if (!record) {
      reasons.push(
        `epoch ${previous.epoch} (between ${from.epoch} and ${target.epoch}) has no state record on the cluster topic: the epoch it took over from, and where that one's topic ends, are unknown`,
      );
      break;
    }
    if (record.topics.data !== previous.topics.data) {
      reasons.push(
        `epoch ${epoch}'s record names ${previous.topics.data} as epoch ${previous.epoch}'s topic, but epoch ${previous.epoch}'s own record names ${record.topics.data}`,
      );
      break;
    }
    epoch = record.epoch;
    previous = record.previous;
  }
  if (reasons.length > 0) return reseed(reasons);

  const first = links[0] as ChainLink;
  const firstEnd = first.end ?? 0n;
  if (from.offset === null) {
    first.from = firstEnd;
  } else if (first.end !== null && from.offset > first.end) {
    return reseed([
      `this database holds ${first.topics.data} up to offset ${from.offset}, past the end ${first.end} the next epoch drained it to: it applied changes that no later epoch holds`,
    ]);
  } else {
    first.from = from.offset;
  }
  reasons.push(...retentionShortfalls(links, input.lowOffsets));
  return reasons.length > 0 ? reseed(reasons) : { kind: "follow", target: targetOf(target), links };
}

/** The latest epoch whose topic can be followed now: the current one, or the one a fencing change leaves. */
function chainTarget(
  states: ReadonlyMap<number, ClusterState>,
  current: ClusterState,
): ChainTarget & { previous: ClusterState["previous"] } {
  const previous = current.previous;
  if (current.phase === "stable" || previous === null || previous.drainedEndOffset !== null) return current;
  const left = states.get(previous.epoch);
  return {
    epoch: previous.epoch,
    primary: previous.primary,
    topics: previous.topics,
    previous: left && left.topics.data === previous.topics.data ? left.previous : null,
  };
}

function targetOf(target: ChainTarget): ChainTarget {
  return { epoch: target.epoch, primary: target.primary, topics: target.topics };
}

function retentionShortfalls(links: ChainLink[], lowOffsets: ReadonlyMap<string, bigint>): string[] {
  const reasons: string[] = [];
  for (const link of links) {
    // A range with nothing in it needs no record; the target's topic may not be created yet.
    if (link.end !== null && link.from >= link.end) continue;
    const low = lowOffsets.get(link.topics.data);
    if (low === undefined) {
      if (link.end !== null) {
        reasons.push(
          `${link.topics.data} (epoch ${link.epoch}) no longer exists: offsets ${link.from}..${link.end - 1n} of it must be applied`,
        );
      }
    } else if (low > link.from) {
      const needed =
        link.end === null ? `from offset ${link.from}` : `offsets ${link.from}..${link.end - 1n}`;
      reasons.push(
        `Kafka's retention deleted ${link.topics.data} (epoch ${link.epoch}) up to offset ${low}: ${needed} of it must be applied`,
      );
    }
  }
  return reasons;
}

/**
 * Where a standby's chain starts, from its positions on epochs' topics: the
 * latest epoch of which it applied something. A position at offset 0 says
 * nothing of that epoch was applied (a standby pointed at a role change's new
 * topic, which may have been superseded before its primary published), so an
 * earlier position with changes applied is where it really is; the latest
 * position counts only when every one is at 0 (a seed at the topic's start).
 */
export function startingPoint(
  positions: readonly { epoch: number; offset: bigint }[],
): { epoch: number; offset: bigint } | null {
  const latest = (of: readonly { epoch: number; offset: bigint }[]) =>
    of.reduce<{ epoch: number; offset: bigint } | null>(
      (a, p) => (a === null || p.epoch > a.epoch ? p : a),
      null,
    );
  return latest(positions.filter((p) => p.offset > 0n)) ?? latest(positions);
}

/**
 * The latest epoch whose primary this node was (a fenced stale primary's own
 * epoch), among every epoch the cluster topic holds; null when none. An epoch
 * whose last record is still `fencing` only named it: it never captured there.
 */
export function lastEpochAsPrimary(states: ReadonlyMap<number, ClusterState>, node: string): number | null {
  let latest: number | null = null;
  for (const state of states.values()) {
    if (state.primary !== node || state.phase === "fencing") continue;
    if (latest === null || state.epoch > latest) latest = state.epoch;
  }
  return latest;
}
