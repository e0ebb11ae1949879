// Top functions by self time in V8 .cpuprofile files, and top allocation sites in .heapprofile files
// (both written by bench/cpu-profile.ts's preload when a diffrelay process exits): what dominates
// when diffrelay misses a target.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface HotFunction {
  name: string;
  selfMs: number;
  share: number;
}

/** Where a profile's function is: `name file:line`, with paths shortened to node_modules/ or dist/. */
function frameName(frame: ProfileNode["callFrame"]): string {
  const { functionName, url, lineNumber } = frame;
  const where = url ? `${url.replace(/^file:\/\/.*?\/(node_modules|dist)\//, "$1/")}:${lineNumber + 1}` : "";
  return `${functionName || "(anonymous)"}${where ? ` ${where}` : ""}`;
}

export function topSelfTime(file: string, limit = 12): HotFunction[] {
  const profile = JSON.parse(readFileSync(file, "utf8")) as CpuProfile;
  const byNode = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<string, number>();
  let total = 0;
  profile.samples.forEach((id, i) => {
    const node = byNode.get(id);
    if (!node) return;
    const us = profile.timeDeltas[i] ?? 0;
    const key = frameName(node.callFrame);
    self.set(key, (self.get(key) ?? 0) + us);
    total += us;
  });
  return [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([name, us]) => ({ name, selfMs: us / 1000, share: total ? us / total : 0 }));
}

/** How the preload (cpu-profile.ts) names each kind of profile; the pid is the first group. */
const PROFILE_FILES = {
  /** CPU.<date>.<time>.<pid>.<tid>.<seq>.cpuprofile */
  cpu: /^CPU\.\d+\.\d+\.(\d+)\..*\.cpuprofile$/,
  /** HEAP.<pid>.heapprofile */
  allocations: /^HEAP\.(\d+)\.heapprofile$/,
};

/** Profiles of one kind in `dir`, by the pid that wrote them. */
export function profilesByPid(dir: string, kind: keyof typeof PROFILE_FILES): Map<number, string> {
  const out = new Map<number, string>();
  for (const file of readdirSync(dir)) {
    const pid = PROFILE_FILES[kind].exec(file)?.[1];
    if (pid) out.set(Number(pid), join(dir, file));
  }
  return out;
}

interface HeapNode {
  callFrame: ProfileNode["callFrame"];
  selfSize: number;
  children: HeapNode[];
}

export interface Allocations {
  /** Bytes allocated over the process's life, as V8's sampling estimates them. */
  totalBytes: number;
  /** Allocation sites by bytes, each named with its caller. */
  top: { site: string; bytes: number; share: number }[];
}

/** Bytes a process allocated, and where, from its .heapprofile. */
export function topAllocations(file: string, limit = 12): Allocations {
  const profile = JSON.parse(readFileSync(file, "utf8")) as { head: HeapNode };
  const bySite = new Map<string, number>();
  let totalBytes = 0;
  const visit = (node: HeapNode, caller: string) => {
    const name = frameName(node.callFrame);
    if (node.selfSize > 0) {
      const site = `${name} < ${caller}`;
      bySite.set(site, (bySite.get(site) ?? 0) + node.selfSize);
      totalBytes += node.selfSize;
    }
    for (const child of node.children) visit(child, name);
  };
  visit(profile.head, "");
  const top = [...bySite.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([site, bytes]) => ({ site, bytes, share: totalBytes ? bytes / totalBytes : 0 }));
  return { totalBytes, top };
}
