// CPU profiles of diffrelay's processes for `--profile`. Node refuses --cpu-prof in NODE_OPTIONS, and
// the processes are started by the demo's launcher (no extra node flags), so a small preload module,
// loaded through NODE_OPTIONS=--import, profiles with node:inspector and writes a .cpuprofile on exit.
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
process.on("exit", () => {
  // A main-thread inspector session answers synchronously, so this completes inside the exit handler.
  session.post("Profiler.stop", (err, result) => {
    if (err) return;
    const name = "CPU.0.0." + process.pid + ".0.0.cpuprofile";
    writeFileSync(process.env.DIFFRELAY_BENCH_PROFILE_DIR + "/" + name, JSON.stringify(result.profile));
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
