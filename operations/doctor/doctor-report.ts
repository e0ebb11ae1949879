import pg from "pg";
import { closeQuietly } from "../../src/errors/close-quietly.js";

export type CheckStatus = "ok" | "warn" | "fail";

/** One line of doctor's report. */
export interface CheckResult {
  /** "source", "kafka" or "standby <name>". */
  area: string;
  /** Short name of what was checked: "wal_level", "topic", "tables"... */
  check: string;
  status: CheckStatus;
  message: string;
  /** What to do about a warn or fail. */
  fix?: string;
}

export interface DoctorReport {
  /** False when any check failed. */
  ok: boolean;
  checks: CheckResult[];
}

export class CheckList {
  readonly results: CheckResult[] = [];

  constructor(private readonly area: string) {}

  add(check: string, status: CheckStatus, message: string, fix?: string): void {
    this.results.push({ area: this.area, check, status, message, ...(fix ? { fix } : {}) });
  }

  /** Runs one check; an unexpected error is that check's failure, not the end of the report. */
  async run(check: string, body: () => Promise<void>): Promise<void> {
    try {
      await body();
    } catch (err) {
      this.add(check, "fail", `could not check: ${(err as Error).message}`);
    }
  }
}

/**
 * Connects as the configured role and runs `body`; a refused connection is the
 * area's one failing check (nothing else can be checked), not an exception.
 */
export async function withConnection(
  checks: CheckList,
  config: pg.ClientConfig,
  fix: string,
  body: (client: pg.Client) => Promise<void>,
): Promise<boolean> {
  const client = new pg.Client({ ...config, connectionTimeoutMillis: 10_000 });
  try {
    await client.connect();
  } catch (err) {
    checks.add("connect", "fail", `cannot connect: ${(err as Error).message}`, fix);
    await closeQuietly(client.end());
    return false;
  }
  try {
    await body(client);
    return true;
  } finally {
    await closeQuietly(client.end());
  }
}

export function renderDoctorReport(report: DoctorReport): string {
  const areaWidth = Math.max(...report.checks.map((c) => c.area.length));
  const lines = report.checks.map(
    (c) =>
      `${c.status.padEnd(4)}  ${c.area.padEnd(areaWidth)}  ${c.check}: ${c.message}${c.fix ? `; fix: ${c.fix}` : ""}`,
  );
  const counts = (status: CheckStatus) => report.checks.filter((c) => c.status === status).length;
  lines.push(`${counts("fail")} failed, ${counts("warn")} warnings, ${counts("ok")} ok`);
  return lines.join("\n");
}

/** A duration in the largest whole unit that reads naturally: "7 days", "36 hours", "90 minutes". */
export function formatDuration(ms: number): string {
  const units: [string, number][] = [
    ["day", 86_400_000],
    ["hour", 3_600_000],
    ["minute", 60_000],
    ["second", 1000],
  ];
  for (const [name, size] of units) {
    if (ms >= size * (name === "day" ? 2 : 1) || name === "second") {
      const n = Math.floor(ms / size);
      return `${n} ${name}${n === 1 ? "" : "s"}`;
    }
  }
  return `${ms} ms`;
}

export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = n;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1 && value % 1024 === 0) {
    value /= 1024;
    unit += 1;
  }
  return `${value} ${units[unit]}`;
}
