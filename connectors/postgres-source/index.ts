/**
 * The postgres-source connector's public interface: what operations/ and app/ may use.
 * Everything else in this folder is the connector's own; test/unit/architecture/layering.test.ts checks the rule.
 */
export { createCaptureMetrics } from "./capture-metrics.js";
export { CaptureService } from "./capture-service.js";
export { HEARTBEAT_PREFIX } from "./heartbeat.js";
export { DDL_PREFIX, SEQUENCES_PREFIX } from "./logical-messages.js";
export {
  decodePgoutput,
  OversizedValue,
  type PgoutputMessage,
  type RelationMessage,
  type TupleValue,
  UNCHANGED_TOAST,
} from "./pgoutput/pgoutput-decoder.js";
export { replicatedSequences, SequenceTracker } from "./sequence-tracker.js";
export { defaultSlotName, LEGACY_SLOT_NAME, resolveCaptureSlot } from "./slot-name.js";
export { identifySource, loadRelationSchema, slotInfo } from "./source-catalog.js";
export { migrateSource, parseTableName } from "./source-migrator.js";
export {
  readZeroLossState,
  releaseZeroLoss,
  type ZeroLossGuarantee,
  zeroLossSetting,
} from "./zero-loss.js";
