import { Counter, Gauge, Histogram } from "prom-client";
import { createProcessMetrics } from "../../src/observability/process-metrics.js";
import type { ApplyPosition } from "./position-store.js";

export type ApplyMetrics = ReturnType<typeof createApplyMetrics>;

export function createApplyMetrics(standby: string) {
  const base = createProcessMetrics({
    process: "apply",
    defaultLabels: { standby },
    healthyHelp:
      "1 while a session is consuming and the position moves (or the topic is caught up), else 0; what /healthz reports",
    errorsHelp: "Failures that ended an apply session (resumed) or the applier (fatal), by kind",
  });
  const { registers, ...shared } = base;
  const lastCommitTimestamp = new Gauge({
    name: "diffrelay_apply_last_commit_timestamp_seconds",
    help: "Source commit time of the last transaction applied to the standby (Unix time; NaN until known)",
    registers,
  });
  // Unset, an unlabelled gauge reads 0, which would say "last commit in 1970".
  lastCommitTimestamp.set(Number.NaN);
  const topicGap = new Gauge({
    name: "diffrelay_apply_topic_gap",
    help: "1 once the applier found that the next message the standby needs is no longer in the topic (re-seed), else 0",
    registers,
  });
  topicGap.set(0);
  return {
    ...shared,
    topicGap,
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
    staleSessionSkipped: new Counter({
      name: "diffrelay_apply_stale_session_messages_total",
      help: "Messages skipped because they came from a capture session that a newer one had followed",
      registers,
    }),
    lagSeconds: new Histogram({
      name: "diffrelay_apply_lag_seconds",
      help: "Source commit to standby commit",
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
      registers,
    }),
    offsetLag: new Gauge({
      name: "diffrelay_apply_offset_lag_messages",
      help: "Topic end offset minus next offset",
      registers,
    }),
    nextOffset: new Gauge({
      name: "diffrelay_apply_next_offset",
      help: "The standby's position in the topic: offset of the next message to apply",
      labelNames: ["topic"],
      registers,
    }),
    lastCommitTimestamp,
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
    groupRetries: new Counter({
      name: "diffrelay_apply_group_retries_total",
      help: "Groups sent with their commit in one round trip that the standby refused (a row count other than the source's, or an error), rolled back and applied again in separate exchanges",
      registers,
    }),
    drift: new Counter({
      name: "diffrelay_apply_drift_total",
      help: "Drift found (with --on-drift log)",
      registers,
    }),
    reconnects: new Counter({
      name: "diffrelay_apply_reconnects_total",
      help: "Apply sessions restarted from the standby's position after a failure",
      registers,
    }),
  };
}

/** Where the standby stands, for the "not advancing" alert and the dashboard. */
export function recordPosition(metrics: ApplyMetrics, position: ApplyPosition): void {
  metrics.nextOffset.set({ topic: position.topic }, Number(position.nextOffset));
  if (position.lastCommitTimeMicros !== null)
    metrics.lastCommitTimestamp.set(Number(position.lastCommitTimeMicros) / 1e6);
}
