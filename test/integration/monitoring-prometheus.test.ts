// A real Prometheus scrapes a running capture and applier under a write load: every query of the shipped
// Grafana dashboard but the nodes' panels returns series, and the "applier not advancing" alert (the
// shipped rule, its windows shortened) fires once the applier is stopped while the load goes on.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { metricsUrl } from "../support/capture-process.js";
import {
  dashboardQueries,
  readsNodes,
  shippedAlertRules,
  withoutGrafanaVariables,
} from "../support/dashboard.js";
import { PrometheusServer } from "../support/prometheus.js";
import { ReplicationPipeline, stopProcess } from "../support/replication-pipeline.js";
import { testServices } from "../support/services.js";
import { WRITE_LOAD_DDL, WriteLoad } from "../support/write-load.js";

const ALERT = "DiffrelayApplierNotAdvancing";

/** The shipped rule with test-sized windows: 2 minutes without a change becomes 15 s, for: 3m becomes 5 s. */
function shortenedRule(): string {
  const rule = shippedAlertRules().find((r) => r.alert === ALERT);
  if (!rule) throw new Error(`${ALERT} is not in the shipped rules`);
  const expr = rule.expr.replace("[2m:15s]", "[15s:1s]");
  // The replacement must have hit: otherwise the test would wait on the shipped 5 minutes and say nothing.
  expect(expr).not.toBe(rule.expr);
  expect(rule.for).toBe("3m");
  return stringify({ groups: [{ name: "diffrelay-test", rules: [{ ...rule, expr, for: "5s" }] }] });
}

const hostPort = (url: string) => new URL(url).host;

describe("monitoring with a real Prometheus", () => {
  let pipeline: ReplicationPipeline;
  let load: WriteLoad | undefined;
  let prometheus: PrometheusServer | undefined;

  beforeAll(async () => {
    const services = testServices();
    pipeline = await ReplicationPipeline.start({
      sourceServerUrl: services.sourceUrl,
      standbys: [{ name: "st1", serverUrl: services.standbyUrls[0] as string }],
      brokers: services.kafkaBrokers,
      prefix: "monitoring",
      ddl: WRITE_LOAD_DDL,
      // The slot's wal_status and lag are read at every heartbeat.
      captureArgs: ["--heartbeat-interval-ms", "1000"],
    });
    prometheus = await PrometheusServer.start({
      jobs: [
        { job: "diffrelay-capture", targets: [hostPort(metricsUrl(pipeline.capture))] },
        { job: "diffrelay-apply", targets: [hostPort(metricsUrl(pipeline.standby("st1").applier))] },
      ],
      rules: [shortenedRule()],
    });
    load = new WriteLoad(pipeline.source.url, 2);
    await load.start();
  });

  afterAll(async () => {
    await load?.stop().catch(() => undefined);
    await prometheus?.stop();
    await pipeline?.stop();
  });

  it("every dashboard query of capture and applier returns series while they run under load", async () => {
    const server = prometheus as PrometheusServer;
    await server.waitUntil(
      async () => (await server.query('up{job=~"diffrelay-.*"} == 1')).length === 2,
      30_000,
      "both targets to be up",
    );
    await (load as WriteLoad).waitForCommits(200);
    // Enough scrapes for rate() over the window to have two samples of each counter that moved.
    await new Promise((r) => setTimeout(r, 8_000));
    // The nodes' panels are checked against a cluster of nodes: cluster-monitoring.test.ts.
    const queries = dashboardQueries().filter((q) => !readsNodes(q.expr));
    expect(queries.length).toBeGreaterThanOrEqual(20);
    const empty: string[] = [];
    for (const { panel, expr } of queries) {
      const result = await server.query(withoutGrafanaVariables(expr, "5s"));
      if (result.length === 0) empty.push(`${panel}: ${expr}`);
    }
    expect(empty).toEqual([]);
    // The load really flowed through both processes (not only series of zeros).
    const applied = await server.query(
      'sum(increase(diffrelay_apply_transactions_total{standby="st1"}[5s]))',
    );
    expect(Number(applied[0]?.value[1])).toBeGreaterThan(0);
    const perChange = await server.query(
      "rate(diffrelay_capture_pgoutput_bytes_total[5s]) / rate(diffrelay_capture_rows_total[5s])",
    );
    expect(Number(perChange[0]?.value[1])).toBeGreaterThan(0);
  });

  it(`${ALERT} stays quiet while the applier advances and fires once it is stopped under load`, async () => {
    const server = prometheus as PrometheusServer;
    const ours = async () => (await server.alerts()).filter((a) => a.labels.alertname === ALERT);
    // The rule has been evaluated against a moving position for longer than its window by now.
    expect(await ours()).toEqual([]);

    await stopProcess(pipeline.standby("st1").applier);
    const stoppedAt = Date.now();
    (load as WriteLoad).assertHealthy();
    await server.waitUntil(
      async () => (await ours()).some((a) => a.state === "firing"),
      60_000,
      `${ALERT} to fire`,
    );
    const firing = (await ours()).filter((a) => a.state === "firing");
    expect(firing.map((a) => a.labels)).toEqual([
      expect.objectContaining({ standby: "st1", topic: pipeline.topic, severity: "critical" }),
    ]);
    // Not before the window (15 s without a change) and the hold (5 s) could have passed.
    expect(Date.now() - stoppedAt).toBeGreaterThan(15_000);
  });
});
