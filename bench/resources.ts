// CPU time and peak memory of the processes under test, read from /proc (Linux): the same source
// for diffrelay's node processes and PostgreSQL's walsenders and apply workers.
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

let ticksPerSecond: number | undefined;

function clockTicks(): number {
  if (ticksPerSecond === undefined) {
    try {
      ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
    } catch {
      ticksPerSecond = 100;
    }
  }
  return ticksPerSecond;
}

/** utime + stime of one process, in seconds (its threads included; its children not). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The command name (field 2) is in parentheses and may contain spaces: split after the last ")".
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  // Fields from 3 on: utime is field 14 and stime field 15 of proc(5), i.e. indexes 11 and 12 here.
  return (Number(fields[11]) + Number(fields[12])) / clockTicks();
}

/** Peak resident set size (VmHWM) of a process since it started, in bytes. */
export function peakRssBytes(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = /^VmHWM:\s+(\d+) kB/m.exec(status)?.[1];
  if (kb === undefined) throw new Error(`no VmHWM for pid ${pid}`);
  return Number(kb) * 1024;
}

/** CPU seconds of named processes between `start()` and `stop()`. */
export class CpuMeter {
  private readonly before = new Map<string, number>();
  private readonly pids = new Map<string, number>();

  constructor(processes: Record<string, number | undefined>) {
    for (const [name, pid] of Object.entries(processes)) if (pid) this.pids.set(name, pid);
  }

  start(): void {
    for (const [name, pid] of this.pids) this.before.set(name, cpuSeconds(pid));
  }

  /** Seconds used by each process since start(). */
  stop(): Record<string, number> {
    const used: Record<string, number> = {};
    for (const [name, pid] of this.pids) used[name] = cpuSeconds(pid) - (this.before.get(name) ?? 0);
    return used;
  }
}
