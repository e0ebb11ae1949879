import { Counter, Gauge } from "prom-client";
import { createProcessMetrics } from "../../src/observability/process-metrics.js";

export type CaptureMetrics = ReturnType<typeof createCaptureMetrics>;

/** pg_replication_slots.wal_status values (PostgreSQL 13 and later). */
export const WAL_STATUSES = ["reserved", "extended", "unreserved", "lost"] as const;

export function createCaptureMetrics() {
  const base = createProcessMetrics({
    process: "capture",
    healthyHelp:
      "1 while a replication session is connected and the slot moves (or nothing waits), else 0; what /healthz reports",
    errorsHelp: "Failures that ended a capture session (reconnected) or the capture (fatal), by kind",
  });
  const { registers, ...shared } = base;
  const slotSafeWalSizeBytes = new Gauge({
    name: "diffrelay_capture_slot_safe_wal_size_bytes",
    help: "pg_replication_slots.safe_wal_size: WAL that may still be written before the slot risks invalidation (+Inf without max_slot_wal_keep_size, 0 once lost, NaN until read)",
    registers,
  });
  // Unset, an unlabelled gauge reads 0: "about to be invalidated" before the slot was even looked at.
  slotSafeWalSizeBytes.set(Number.NaN);
  return {
    ...shared,
    transactions: new Counter({
      name: "diffrelay_capture_transactions_total",
      help: "Source transactions captured and acknowledged by Kafka",
      registers,
    }),
    rows: new Counter({ name: "diffrelay_capture_rows_total", help: "Row changes captured", registers }),
    bytesPublished: new Counter({
      name: "diffrelay_capture_published_bytes_total",
      help: "Bytes of data messages acknowledged by Kafka (before Kafka's compression)",
      registers,
    }),
    pgoutputBytes: new Counter({
      name: "diffrelay_capture_pgoutput_bytes_total",
      help: "Bytes of pgoutput messages read from the slot (what PostgreSQL logical replication would ship)",
      registers,
    }),
    messagesPublished: new Counter({
      name: "diffrelay_capture_published_messages_total",
      help: "Data messages acknowledged by Kafka",
      labelNames: ["topic"],
      registers,
    }),
    topicEndOffset: new Gauge({
      name: "diffrelay_capture_topic_end_offset",
      help: "The data topic's end offset (next offset to be written), as of the capture's last acknowledged produce",
      labelNames: ["topic"],
      registers,
    }),
    slotLagBytes: new Gauge({
      name: "diffrelay_capture_slot_lag_bytes",
      help: "Server WAL end minus the slot's confirmed position",
      registers,
    }),
    slotWalStatus: new Gauge({
      name: "diffrelay_capture_slot_wal_status",
      help: "pg_replication_slots.wal_status of the capture's slot: 1 for the current value, 0 for the others",
      labelNames: ["wal_status"],
      registers,
    }),
    slotSafeWalSizeBytes,
    timeBehindSeconds: new Gauge({
      name: "diffrelay_capture_time_behind_seconds",
      help: "Now minus the commit time of the last acknowledged transaction, while changes are pending",
      registers,
    }),
    lastAckedLsn: new Gauge({
      name: "diffrelay_capture_acknowledged_lsn_bytes",
      help: "Last LSN confirmed to the slot, as a byte position in the WAL",
      registers,
    }),
    reconnects: new Counter({
      name: "diffrelay_capture_reconnects_total",
      help: "Capture sessions restarted",
      registers,
    }),
  };
}

/**
 * Records the capture slot's row of pg_replication_slots; null when the slot is gone (then every
 * status is 0: the capture fails with slot_missing, which the errors counter shows).
 */
export function recordSlotState(
  metrics: CaptureMetrics,
  slot: { walStatus: string | null; safeWalSize: string | null } | null,
): void {
  for (const s of WAL_STATUSES) metrics.slotWalStatus.set({ wal_status: s }, slot?.walStatus === s ? 1 : 0);
  if (slot === null) metrics.slotSafeWalSizeBytes.set(Number.NaN);
  else if (slot.walStatus === "lost") metrics.slotSafeWalSizeBytes.set(0);
  // NULL while max_slot_wal_keep_size is -1: no limit, the slot is never invalidated for its size.
  else if (slot.safeWalSize === null) metrics.slotSafeWalSizeBytes.set(Number.POSITIVE_INFINITY);
  else metrics.slotSafeWalSizeBytes.set(Number(slot.safeWalSize));
}
