/**
 * Cluster state: which node is the primary of which epoch, durable and
 * replicated in Kafka, with no consensus of diffrelay's own.
 *
 * Contract
 * - Storage: one compacted, one-partition topic `<topicPrefix>.cluster.<cluster>`
 *   (durability as the data topics). Key `epoch/<N>` holds the latest state of
 *   epoch N (a `ClusterState`, JSON); key `node/<name>` the latest `NodeReport`
 *   of a node. Records are published with acks=all.
 * - Epochs are claimed, not written: a role change based on the state of
 *   epoch E claims exactly E + 1 (compare-and-set). `claimEpoch(N)` creates the topic
 *   `<topicPrefix>.cluster.<cluster>.claim.e<N>`. Kafka's controller creates a
 *   topic atomically, so of concurrent claimants of N exactly one succeeds; the
 *   others, and anyone claiming N while a claim >= N exists, get an
 *   `EpochConflictError` (kind `conflict`, exit 9) having changed nothing.
 * - The current state is the state of the highest epoch that is both claimed
 *   and published (`ClusterView.state`); a state record without a claim is
 *   ignored; `ClusterView.states` keeps the latest state of every claimed
 *   epoch (the chain a node that missed role changes follows). Only the holder of the highest claim publishes states:
 *   `publishState` refuses a state whose epoch is not the highest claim.
 *   Nodes publish reports only.
 * - A node acts only on `view.state`. A node that is primary of an older
 *   epoch than `view.state.epoch` fences itself (read-only, stops capturing).
 * - Reading: `read()` returns the view as of the topic's end when called;
 *   `follow(onChange)` calls back with the whole view once the topic was read
 *   to the end it had when following began, then after each batch read, until
 *   `stop()`. No view of a topic read halfway is ever given: a node that saw
 *   "no state" in one would bootstrap a cluster that has one.
 * - Claims are never deleted: an epoch is never reused. A claimant that dies
 *   between claim and publish leaves a claim without a state. A switchover
 *   based on epoch E claims exactly E+1 (compare-and-set: a claim in flight is
 *   a conflict), so it finds that claim a conflict; a failover claims above
 *   every claim (`nextEpoch`), so it is never blocked.
 * - A role change starts from whatever phase the state is in (`changeBase`):
 *   none needs a hand-written record to recover.
 */
export { type ChangeBase, changeBase, holdsBase, nextEpoch } from "./change-base.js";
export { EpochConflictError } from "./cluster-errors.js";
export {
  type ClusterMember,
  type ClusterPhase,
  type ClusterState,
  type ClusterView,
  isReadyAt,
  type LeaseRecord,
  memberNamed,
  type NodeReport,
  type RejoinSummary,
  type ReportedCapture,
  reportedCapture,
  standbysOf,
} from "./cluster-state.js";
export { type ClusterFollower, ClusterStore, type ClusterStoreOptions } from "./cluster-store.js";
