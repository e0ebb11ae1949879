// The benchmark harness end to end at tiny size: real PostgreSQL clusters, Kafka, diffrelay processes
// and a native subscription (the bench's own private stack). It checks that the harness produces
// every scenario's figures, not what they are: benchmarks do not gate CI.
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";

interface Figure {
  scenario: string;
  name: string;
  diffrelay: number | null;
  native: number | null;
  ratio: number | null;
}

function runTinyBench(): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "bench/run-bench.ts", "--tiny"], {
      cwd: process.cwd(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += d;
    });
    child.stderr.on("data", (d) => {
      stderr += d;
    });
    child.on("error", reject);
    child.on("exit", (code) => resolve({ code, stdout, stderr }));
  });
}

describe("npm run bench --tiny", () => {
  it("writes a results file with every scenario's figures as finite numbers, and a table", async () => {
    const run = await runTinyBench();
    expect(run.code, run.stderr.slice(-3000)).toBe(0);
    const file = /bench: results in (\S+\.json)/.exec(run.stderr)?.[1];
    expect(file, run.stderr.slice(-3000)).toBeDefined();
    const results = JSON.parse(readFileSync(file as string, "utf8")) as { tiny: boolean; figures: Figure[] };
    expect(results.tiny).toBe(true);

    const scenarios = [
      "1 small txns",
      "2 bulk",
      "3 bandwidth",
      "3 identity",
      "4 resources",
      "5 catch-up",
      "6 large txn",
    ];
    for (const scenario of scenarios) {
      const figures = results.figures.filter((f) => f.scenario === scenario);
      expect(figures.length, scenario).toBeGreaterThan(0);
      for (const f of figures) {
        const values = [f.diffrelay, f.native, f.ratio].filter((v) => v !== null);
        expect(values.length, `${scenario}: ${f.name}`).toBeGreaterThan(0);
        for (const v of values) expect(Number.isFinite(v), `${scenario}: ${f.name} = ${v}`).toBe(true);
      }
    }
    // The comparisons the issue asks for have both sides measured in the same run.
    const sideBySide = results.figures.filter((f) => f.diffrelay !== null && f.native !== null);
    expect(sideBySide.map((f) => f.scenario)).toEqual(
      expect.arrayContaining([
        "1 small txns",
        "2 bulk",
        "3 bandwidth",
        "3 identity",
        "5 catch-up",
        "6 large txn",
        "7 commit latency",
      ]),
    );
    // What the Kafka log's bytes per update are made of, from the capture's counters.
    const bandwidth = (name: string) =>
      results.figures.find((f) => f.scenario === "3 bandwidth" && f.name.startsWith(name))?.diffrelay;
    expect(bandwidth("source transactions per Kafka message")).toBeGreaterThan(0);
    expect(bandwidth("bytes per 1-column update before Kafka's compression")).toBeGreaterThan(0);
    expect(run.stdout).toMatch(/^\| scenario \| figure \|/m);
  }, 180_000);
});
