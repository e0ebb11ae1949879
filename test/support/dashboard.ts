import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";

const ROOT = resolve(fileURLToPath(import.meta.url), "..", "..", "..");
export const DASHBOARD_FILE = resolve(ROOT, "monitoring/grafana/diffrelay.json");
export const ALERT_RULES_FILE = resolve(ROOT, "monitoring/prometheus/diffrelay-alerts.yml");
export const ALERT_RULES_TEST_FILE = resolve(ROOT, "monitoring/prometheus/diffrelay-alerts.test.yml");

interface Panel {
  title: string;
  targets?: { expr: string }[];
  panels?: Panel[];
}

/** Every query of the Grafana dashboard, with the panel it belongs to (rows' panels included). */
export function dashboardQueries(): { panel: string; expr: string }[] {
  const dashboard = JSON.parse(readFileSync(DASHBOARD_FILE, "utf8")) as { panels: Panel[] };
  const queries: { panel: string; expr: string }[] = [];
  const walk = (panels: Panel[]) => {
    for (const p of panels) {
      for (const t of p.targets ?? []) queries.push({ panel: p.title, expr: t.expr });
      walk(p.panels ?? []);
    }
  };
  walk(dashboard.panels);
  return queries;
}

/** Whether a dashboard query reads the cluster's nodes (`diffrelay node`), not a capture or an applier. */
export function readsNodes(expr: string): boolean {
  return /diffrelay_node_|job="diffrelay-node"/.test(expr);
}

/** A Grafana query as Prometheus itself takes it: Grafana's interval variable replaced by a fixed window. */
export function withoutGrafanaVariables(expr: string, rateInterval: string): string {
  return expr.replaceAll("$__rate_interval", rateInterval);
}

export interface AlertRule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

export function shippedAlertRules(): AlertRule[] {
  const doc = parse(readFileSync(ALERT_RULES_FILE, "utf8")) as { groups: { rules: AlertRule[] }[] };
  return doc.groups.flatMap((g) => g.rules);
}
