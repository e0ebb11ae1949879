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
    const ratio = f.ratio === null ? "–" : `${f.ratio.toFixed(f.ratio < 0.1 ? 3 : 2)}×`;
    const verdict = f.pass === undefined ? "" : f.pass ? "PASS" : "MISS";
    lines.push(
      `| ${f.scenario} | ${f.name} | ${f.unit} | ${fmt(f.diffrelay)} | ${fmt(f.native)} | ${ratio} | ${f.target ?? ""} | ${verdict} |`,
    );
  }
  return lines.join("\n");
}
