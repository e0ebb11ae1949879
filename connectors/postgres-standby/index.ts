/**
 * The postgres-standby connector's public interface: what operations/ and app/ may use.
 * Everything else in this folder is the connector's own; test/unit/architecture/layering.test.ts checks the rule.
 */
export { assertApplierStopped } from "./applier-presence.js";
export { createApplyMetrics } from "./apply-metrics.js";
export { ApplyService } from "./apply-service.js";
export { SchemaDriftError } from "./drift-error.js";
export { sequence as advanceSequenceStatement } from "./planning/non-row-statements.js";
export { TableMappings } from "./planning/table-mapping.js";
export { requireOffsetInTopic } from "./position-errors.js";
export {
  latestRejoinReport,
  liftPause,
  markRejoinRepaired,
  markSeedFinished,
  markSeedStarted,
  movePausePoint,
  pauseReached,
  readPosition,
  recordRejoinReport,
  requestPause,
  writePosition,
} from "./position-store.js";
export { columnTypeDifferences, readTargetTable, type TargetTable } from "./standby-catalog.js";
