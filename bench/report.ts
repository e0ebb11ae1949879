// Figures, targets and the markdown table: each figure with diffrelay's value, PostgreSQL's own
// value measured in the same invocation, their ratio, and the target verdict where there is one.

export interface Figure {
  scenario: string;
  name: string;
  unit: string;
  /** null where the figure has no diffrelay side (e.g. WAL, the information floor). */
  diffrelay: number | null;
  /** PostgreSQL's figure: native logical replication, or physical/WAL where the name says so. */
  native: number | null;
  /** diffrelay / native, when both exist. */
  ratio: number | null;
  target?: string;
  pass?: boolean;
  /** With --repeat: the ratio's lowest and highest over the repetitions, and how many passed. */
  repeats?: { runs: number; ratioMin: number | null; ratioMax: number | null; passes: number };
}

export function figure(
  scenario: string,
  name: string,
  unit: string,
  diffrelay: number | null,
  native: number | null,
  target?: { text: string; pass: (d: number, n: number | null) => boolean },
): Figure {
  const ratio = diffrelay !== null && native !== null && native !== 0 ? diffrelay / native : null;
  const f: Figure = { scenario, name, unit, diffrelay, native, ratio };
  if (target && diffrelay !== null) {
    f.target = target.text;
    f.pass = target.pass(diffrelay, native);
  }
  return f;
}

/**
 * One figure per figure of the first repetition: the median of each side and of the ratio over
 * the repetitions, with the ratio's range and how many repetitions passed. The target is met
 * only when every repetition met it: one lucky run of several is not a result.
 */
export function combineRepeats(repetitions: Figure[][]): Figure[] {
  const first = repetitions[0];
  if (first === undefined) throw new Error("no repetition to combine");
  if (repetitions.length === 1) return first;
  return first.map((f) => {
    const same = repetitions.map((figures) =>
      figures.find((g) => g.scenario === f.scenario && g.name === f.name),
    );
    const ratios = present(same.map((g) => g?.ratio ?? null));
    const passes = same.filter((g) => g?.pass === true).length;
    const combined: Figure = {
      ...f,
      diffrelay: median(present(same.map((g) => g?.diffrelay ?? null))),
      native: median(present(same.map((g) => g?.native ?? null))),
      ratio: median(ratios),
      repeats: {
        runs: repetitions.length,
        ratioMin: ratios.length ? Math.min(...ratios) : null,
        ratioMax: ratios.length ? Math.max(...ratios) : null,
        passes,
      },
    };
    if (f.pass !== undefined) combined.pass = passes === repetitions.length;
    return combined;
  });
}

function present(values: (number | null)[]): number[] {
  return values.filter((v): v is number => v !== null);
}

function median(values: number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function fmtRatio(ratio: number): string {
  return `${ratio.toFixed(ratio < 0.1 ? 3 : 2)}×`;
}

function fmt(value: number | null): string {
  if (value === null) return "–";
  if (!Number.isFinite(value)) return String(value);
  const abs = Math.abs(value);
  if (abs >= 1000) return Math.round(value).toLocaleString("en-US");
  if (abs >= 100) return value.toFixed(0);
  if (abs >= 10) return value.toFixed(1);
  return value.toPrecision(3);
}

export function markdownTable(figures: Figure[]): string {
  const lines = [
    "| scenario | figure | unit | diffrelay | PostgreSQL | ratio | target | |",
    "| --- | --- | --- | ---: | ---: | ---: | --- | --- |",
  ];
  for (const f of figures) {
    const range =
      f.repeats?.ratioMin != null && f.repeats.ratioMax != null
        ? ` (${fmtRatio(f.repeats.ratioMin)}–${fmtRatio(f.repeats.ratioMax)})`
        : "";
    const ratio = f.ratio === null ? "–" : `${fmtRatio(f.ratio)}${range}`;
    const passed = f.repeats ? ` ${f.repeats.passes}/${f.repeats.runs}` : "";
    const verdict = f.pass === undefined ? "" : `${f.pass ? "PASS" : "MISS"}${passed}`;
    lines.push(
      `| ${f.scenario} | ${f.name} | ${f.unit} | ${fmt(f.diffrelay)} | ${fmt(f.native)} | ${ratio} | ${f.target ?? ""} | ${verdict} |`,
    );
  }
  return lines.join("\n");
}
