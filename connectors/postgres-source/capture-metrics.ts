import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";

export type CaptureMetrics = ReturnType<typeof createCaptureMetrics>;

export function createCaptureMetrics() {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "diffrelay_capture_process_" });
  const registers = [registry];
  return {
    registry,
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
    slotLagBytes: new Gauge({
      name: "diffrelay_capture_slot_lag_bytes",
      help: "Server WAL end minus the slot's confirmed position",
      registers,
    }),
    timeBehindSeconds: new Gauge({
      name: "diffrelay_capture_time_behind_seconds",
      help: "Now minus the commit time of the last acknowledged transaction, while changes are pending",
      registers,
    }),
    lastAckedLsn: new Gauge({
      name: "diffrelay_capture_last_acknowledged_lsn",
      help: "Last LSN confirmed to the slot, as a number",
      registers,
    }),
    reconnects: new Counter({
      name: "diffrelay_capture_reconnects_total",
      help: "Capture sessions restarted",
      registers,
    }),
  };
}
