// The shipped alert rules load in Prometheus's own checker and pass their unit tests (promtool), and every
// alert has a test: a rule that is added untested, or that a rename breaks, fails here.
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { dirname } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { ALERT_RULES_FILE, ALERT_RULES_TEST_FILE, shippedAlertRules } from "../support/dashboard.js";
import { prometheusTool } from "../support/prometheus.js";

const run = promisify(execFile);

describe("alert rules", () => {
  it("pass promtool check rules", async () => {
    const { stdout } = await run(prometheusTool("promtool"), ["check", "rules", ALERT_RULES_FILE]);
    expect(stdout).toMatch(/SUCCESS: \d+ rules found/);
  });

  it("pass their promtool unit tests", async () => {
    const { stdout, stderr } = await run(
      prometheusTool("promtool"),
      ["test", "rules", ALERT_RULES_TEST_FILE],
      {
        cwd: dirname(ALERT_RULES_TEST_FILE),
      },
    );
    expect(`${stdout}${stderr}`).toMatch(/SUCCESS/);
  });

  it("each have a firing and a quiet case in the unit tests", () => {
    const tests = parse(readFileSync(ALERT_RULES_TEST_FILE, "utf8")) as {
      tests: { alert_rule_test: { alertname: string; exp_alerts: unknown[] }[] }[];
    };
    const cases = tests.tests.flatMap((t) => t.alert_rule_test);
    const alerts = shippedAlertRules().map((r) => r.alert);
    expect(alerts).toEqual(
      expect.arrayContaining([
        "DiffrelaySlotLagHigh",
        "DiffrelayCaptureDown",
        "DiffrelayApplierNotAdvancing",
        "DiffrelayApplyLagHigh",
        "DiffrelayDrift",
        "DiffrelayDeadLettersRising",
        "DiffrelaySlotAboutToBeInvalidated",
        "DiffrelayStalled",
        "DiffrelayApplyTopicGap",
        "DiffrelayNodeFenced",
        "DiffrelayNodeDatabaseDown",
        "DiffrelayNoPrimary",
        "DiffrelayFailover",
        "DiffrelayLeaseFlapping",
      ]),
    );
    for (const alert of alerts) {
      const mine = cases.filter((c) => c.alertname === alert);
      expect(
        mine.some((c) => c.exp_alerts.length > 0),
        `${alert} fires in a test`,
      ).toBe(true);
      expect(
        mine.some((c) => c.exp_alerts.length === 0),
        `${alert} stays quiet in a test`,
      ).toBe(true);
    }
  });
});
