/**
 * The rejoin operation's public interface: a failed primary becomes an exact
 * standby of the new one (the node calls it when it finds itself demoted).
 */
export type { RejoinReport, UnpublishedChange, UnpublishedTransaction } from "./rejoin-report.js";
export { renderRejoinReport } from "./rejoin-report.js";
export {
  RejoinDriftError,
  type RejoinOptions,
  RejoinRefusedError,
  rejoinAsStandby,
} from "./rejoin-runner.js";
export { describeTransaction, findUnpublishedTransactions } from "./unpublished-transactions.js";
