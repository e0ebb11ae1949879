// CPU and allocation profiles of diffrelay's processes for `--profile`. Node refuses --cpu-prof in
// NODE_OPTIONS, and the processes are started by the demo's launcher (no extra node flags), so a small
// preload module, loaded through NODE_OPTIONS=--import, profiles with node:inspector and writes a
// .cpuprofile and a .heapprofile on exit. The heap profile samples every allocation, also those the
// GC has since collected: what a change costs the GC, not what stays live.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";

const PRELOAD = `import { Session } from "node:inspector";
import { writeFileSync } from "node:fs";
const session = new Session();
session.connect();
session.post("Profiler.enable");
session.post("Profiler.setSamplingInterval", { interval: 1000 });
session.post("Profiler.start");
session.post("HeapProfiler.enable");
session.post("HeapProfiler.startSampling", {
  samplingInterval: 16384,
  includeObjectsCollectedByMajorGC: true,
  includeObjectsCollectedByMinorGC: true,
});
process.on("exit", () => {
  // A main-thread inspector session answers synchronously, so this completes inside the exit handler.
  const dir = process.env.DIFFRELAY_BENCH_PROFILE_DIR;
  session.post("Profiler.stop", (err, result) => {
    if (err) return;
    writeFileSync(dir + "/CPU.0.0." + process.pid + ".0.0.cpuprofile", JSON.stringify(result.profile));
  });
  session.post("HeapProfiler.stopSampling", (err, result) => {
    if (err) return;
    writeFileSync(dir + "/HEAP." + process.pid + ".heapprofile", JSON.stringify(result.profile));
  });
});
`;

/** Writes the preload into `dir` and returns the environment that makes a process profile itself into `dir`. */
export function profilingEnv(dir: string): NodeJS.ProcessEnv {
  mkdirSync(dir, { recursive: true });
  const file = join(dir, "profile-preload.mjs");
  writeFileSync(file, PRELOAD);
  return { NODE_OPTIONS: `--import ${pathToFileURL(file).href}`, DIFFRELAY_BENCH_PROFILE_DIR: dir };
}
