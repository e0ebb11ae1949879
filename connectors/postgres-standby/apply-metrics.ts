import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";

export type ApplyMetrics = ReturnType<typeof createApplyMetrics>;

export function createApplyMetrics(standby: string) {
  const registry = new Registry();
  registry.setDefaultLabels({ standby });
  collectDefaultMetrics({ register: registry, prefix: "diffrelay_apply_process_" });
  const registers = [registry];
  return {
    registry,
    transactions: new Counter({
      name: "diffrelay_apply_transactions_total",
      help: "Source transactions applied",
      registers,
    }),
    rows: new Counter({ name: "diffrelay_apply_rows_total", help: "Row changes applied", registers }),
    duplicatesSkipped: new Counter({
      name: "diffrelay_apply_duplicate_transactions_total",
      help: "Source transactions skipped because they were already applied",
      registers,
    }),
    lagSeconds: new Histogram({
      name: "diffrelay_apply_lag_seconds",
      help: "Source commit to standby commit",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    offsetLag: new Gauge({
      name: "diffrelay_apply_offset_lag",
      help: "Topic end offset minus next offset",
      registers,
    }),
    groupRows: new Histogram({
      name: "diffrelay_apply_group_rows",
      help: "Rows per standby transaction",
      buckets: [1, 10, 100, 1000, 10000, 100000],
      registers,
    }),
    deadLettered: new Counter({
      name: "diffrelay_apply_dead_lettered_total",
      help: "Messages that did not decode (or came from another source) sent to the dead-letter topic",
      registers,
    }),
    batchFallbacks: new Counter({
      name: "diffrelay_apply_batch_fallbacks_total",
      help: "Batched statement groups rolled back to their savepoint and applied again one statement per change",
      registers,
    }),
    drift: new Counter({
      name: "diffrelay_apply_drift_total",
      help: "Drift found (with --on-drift log)",
      registers,
    }),
  };
}
