// The metric names are an interface: alert rules, the Grafana dashboard and operators' own queries use them.
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { Registry } from "prom-client";
import { describe, expect, it } from "vitest";
import {
  createCaptureMetrics,
  recordSlotState,
} from "../../../connectors/postgres-source/capture-metrics.js";
import { createApplyMetrics, recordPosition } from "../../../connectors/postgres-standby/apply-metrics.js";
import { createNodeMetrics } from "../../../operations/node/node-metrics.js";
import { ERROR_KINDS } from "../../../src/errors/diffrelay-error.js";
import { ALERT_RULES_FILE, DASHBOARD_FILE } from "../../support/dashboard.js";

/** One name for both processes (label `process`), so one alert rule covers them. */
const SHARED = new Set(["diffrelay_stalled"]);

async function exposed() {
  const capture = createCaptureMetrics();
  const apply = createApplyMetrics("st1");
  const nodeRegistry = new Registry();
  createNodeMetrics([nodeRegistry]);
  const metrics = [
    ...(await capture.registry.getMetricsAsJSON()),
    ...(await apply.registry.getMetricsAsJSON()),
    ...(await nodeRegistry.getMetricsAsJSON()),
  ];
  // prom-client's process and Node.js metrics keep their standard names under our prefix.
  const own = metrics.filter(
    (m) => !/^diffrelay_(capture|apply)_(nodejs|process)_/.test(m.name) && !SHARED.has(m.name),
  );
  return { capture, apply, metrics, own };
}

describe("metric names", () => {
  it("follow Prometheus conventions: counters end in _total, nothing else does, units are base units", async () => {
    const { own } = await exposed();
    expect(own.length).toBeGreaterThan(20);
    for (const m of own) {
      expect(m.name, m.name).toMatch(/^diffrelay_(capture|apply|node)_[a-z0-9_]+$/);
      if (String(m.type) === "counter") expect(m.name, m.name).toMatch(/_total$/);
      else expect(m.name, m.name).not.toMatch(/_total$/);
      expect(m.name, m.name).not.toMatch(/_process_process_|_(ms|milliseconds|kb|mb|bytes_total_bytes)$/);
    }
  });

  it("use only labels with a bounded set of values", async () => {
    const { own } = await exposed();
    const allowed = new Set(["standby", "topic", "kind", "wal_status", "le", "process", "outcome"]);
    for (const m of own) {
      for (const v of m.values) {
        for (const label of Object.keys(v.labels)) expect(allowed, `${m.name}{${label}}`).toContain(label);
      }
    }
  });

  it("are all documented in docs/operations.md", async () => {
    const doc = readFileSync(new URL("../../../docs/operations.md", import.meta.url), "utf8");
    const { own } = await exposed();
    for (const m of own) expect(doc, m.name).toContain(m.name);
  });

  it("that the alert rules and the dashboard query exist (renames cannot leave them behind)", async () => {
    const { metrics } = await exposed();
    const names = new Set(metrics.map((m) => m.name));
    const text = (await readFile(ALERT_RULES_FILE, "utf8")) + (await readFile(DASHBOARD_FILE, "utf8"));
    const used = new Set(text.match(/\bdiffrelay_[a-z0-9_]+/g) ?? []);
    expect(used.size).toBeGreaterThan(15);
    for (const name of used) {
      const base = name.replace(/_(bucket|sum|count)$/, "");
      expect(names.has(name) || names.has(base), name).toBe(true);
    }
  });
});

describe("metric values", () => {
  it("expose every error kind at 0 from the start, so rate() and increase() see the first error", async () => {
    const { capture, apply } = await exposed();
    const captureErrors = (await capture.errors.get()).values.map((v) => v.labels.kind);
    const applyErrors = (await apply.errors.get()).values.map((v) => v.labels.kind);
    expect(captureErrors.sort()).toEqual([...ERROR_KINDS].sort());
    expect(applyErrors.sort()).toEqual([...ERROR_KINDS].sort());
  });

  it("report health from the service's probe at scrape time", async () => {
    const { capture } = await exposed();
    let flowing = false;
    capture.reportHealthFrom(() => flowing);
    expect((await capture.healthy.get()).values[0]?.value).toBe(0);
    flowing = true;
    expect((await capture.healthy.get()).values[0]?.value).toBe(1);
  });

  it("map the slot's wal_status and safe_wal_size, with +Inf for an unlimited slot and 0 once lost", async () => {
    const { capture } = await exposed();
    const state = async () => ({
      status: Object.fromEntries(
        (await capture.slotWalStatus.get()).values.map((v) => [v.labels.wal_status, v.value]),
      ),
      safe: (await capture.slotSafeWalSizeBytes.get()).values[0]?.value,
    });
    expect((await state()).safe).toBeNaN();
    recordSlotState(capture, { walStatus: "extended", safeWalSize: "123456" });
    expect(await state()).toEqual({
      status: { reserved: 0, extended: 1, unreserved: 0, lost: 0 },
      safe: 123456,
    });
    recordSlotState(capture, { walStatus: "reserved", safeWalSize: null });
    expect((await state()).safe).toBe(Number.POSITIVE_INFINITY);
    recordSlotState(capture, { walStatus: "lost", safeWalSize: null });
    expect(await state()).toEqual({ status: { reserved: 0, extended: 0, unreserved: 0, lost: 1 }, safe: 0 });
  });

  it("record the standby's position and its last source commit time once known", async () => {
    const { apply } = await exposed();
    const commitTime = async () => (await apply.lastCommitTimestamp.get()).values[0]?.value;
    const position = {
      topic: "t",
      partition: 0,
      nextOffset: 42n,
      lastCommitLsn: 1n,
      lastCommitTimeMicros: null,
      sourceId: null,
      epoch: 0,
    };
    recordPosition(apply, position);
    expect(await commitTime()).toBeNaN();
    recordPosition(apply, { ...position, nextOffset: 43n, lastCommitTimeMicros: 1_700_000_000_500_000n });
    expect(await commitTime()).toBe(1_700_000_000.5);
    expect((await apply.nextOffset.get()).values).toEqual([{ labels: { topic: "t" }, value: 43 }]);
  });

  it("expose diffrelay_stalled per process and diffrelay_apply_topic_gap at 0 from the start", async () => {
    const { capture, apply } = await exposed();
    let stalled = false;
    apply.reportStallFrom(() => stalled);
    const stalledOf = async (registry: typeof apply.registry) =>
      (await registry.getSingleMetric("diffrelay_stalled")?.get())?.values;
    expect(await stalledOf(capture.registry)).toEqual([{ labels: { process: "capture" }, value: 0 }]);
    expect(await stalledOf(apply.registry)).toEqual([{ labels: { process: "apply" }, value: 0 }]);
    stalled = true;
    expect(await stalledOf(apply.registry)).toEqual([{ labels: { process: "apply" }, value: 1 }]);
    expect((await apply.topicGap.get()).values).toEqual([{ labels: { standby: "st1" }, value: 0 }]);
  });
});
