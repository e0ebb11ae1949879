/**
 * The rejoin operation's public interface: a failed primary becomes an exact
 * standby of the new one, and a node behind the cluster by any number of role
 * changes catches up (the node calls catchUpWithCluster when it finds itself
 * demoted or left behind).
 */
export {
  type ClusterCatchUp,
  type ClusterCatchUpOptions,
  catchUpWithCluster,
} from "./cluster-catch-up.js";
export { type ChainLink, type ChainTarget, type EpochChain, epochChain } from "./epoch-chain.js";
export { RejoinDriftError, RejoinRefusedError } from "./rejoin-errors.js";
export type { RejoinReport, UnpublishedChange, UnpublishedTransaction } from "./rejoin-report.js";
export { renderRejoinReport } from "./rejoin-report.js";
export { type RejoinOptions, rejoinAsStandby } from "./rejoin-runner.js";
export { describeTransaction, findUnpublishedTransactions } from "./unpublished-transactions.js";
