import { describe, expect, it } from "vitest";
import { combineRepeats, type Figure, figure, markdownTable } from "../../../bench/report.js";

const atMost2ms = { text: "≤ 2 ms", pass: (d: number) => d <= 2 };
const rate = (d: number, n: number) => figure("1 small txns", "end-to-end rate", "txn/s", d, n);
const latency = (d: number) => figure("1 small txns", "latency p50", "ms", d, 0.3, atMost2ms);

describe("combineRepeats", () => {
  it("gives one repetition back as it is", () => {
    const once = [rate(900, 1000)];
    expect(combineRepeats([once])).toBe(once);
  });

  it("takes each side's median and the ratios' median, with the ratio's range", () => {
    const [combined] = combineRepeats([[rate(900, 1000)], [rate(600, 1000)], [rate(1000, 800)]]) as [Figure];
    expect(combined.diffrelay).toBe(900);
    expect(combined.native).toBe(1000);
    expect(combined.ratio).toBeCloseTo(0.9);
    expect(combined.repeats).toEqual({ runs: 3, ratioMin: 0.6, ratioMax: 1.25, passes: 0 });
  });

  it("averages the middle two of an even number of repetitions", () => {
    const [combined] = combineRepeats([[rate(100, 100)], [rate(300, 100)]]) as [Figure];
    expect(combined.diffrelay).toBe(200);
    expect(combined.ratio).toBe(2);
  });

  it("meets a target only when every repetition met it, and says how many did", () => {
    const [twoOfThree] = combineRepeats([[latency(1.5)], [latency(2.5)], [latency(1.9)]]) as [Figure];
    expect(twoOfThree.pass).toBe(false);
    expect(twoOfThree.repeats?.passes).toBe(2);
    const [all] = combineRepeats([[latency(1.5)], [latency(1.9)]]) as [Figure];
    expect(all.pass).toBe(true);
  });

  it("counts a figure missing from a repetition against its target", () => {
    const [combined] = combineRepeats([[latency(1.5)], []]) as [Figure];
    expect(combined.diffrelay).toBe(1.5);
    expect(combined.pass).toBe(false);
  });

  it("prints the median ratio with its range and the repetitions that passed", () => {
    const table = markdownTable(combineRepeats([[latency(1.5)], [latency(2.5)], [latency(1.9)]]));
    expect(table).toContain("| 1.90 | 0.300 | 6.33× (5.00×–8.33×) | ≤ 2 ms | MISS 2/3 |");
  });
});
