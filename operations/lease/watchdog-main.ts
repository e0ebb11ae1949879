/**
 * The fence watchdog: a process of its own beside a primary's node, so that
 * the database is fenced when the node cannot do it itself: killed (its end
 * of stdin closes) or frozen (SIGSTOP, a long pause) past the lease it last
 * armed. Lines on stdin: first the JSON settings, then `arm <ms>` (fence
 * unless armed again within ms) and `disarm`; it answers `armed`/`disarmed`
 * on stdout, and exits after a fence or a disarm at the end of input.
 */
import { createInterface } from "node:readline";
import type { DiffrelayConfig } from "../../src/config/config-schema.js";
import { NodeDatabase } from "../node/node-database.js";
import { monotonicClock } from "./lease-observer.js";

interface WatchdogSettings {
  node: string;
  databaseUrl: string;
  config: DiffrelayConfig;
}

const FENCE_ATTEMPTS = 5;

let settings: WatchdogSettings | null = null;
let deadline: number | null = null;
let timer: NodeJS.Timeout | null = null;
let fencing: Promise<void> | null = null;

function log(level: "info" | "error", msg: string, extra: object = {}): void {
  process.stderr.write(
    `${JSON.stringify({ level, time: new Date().toISOString(), name: "diffrelay-fence-watchdog", node: settings?.node, msg, ...extra })}\n`,
  );
}

function fence(why: string): Promise<void> {
  fencing ??= (async () => {
    if (timer) clearTimeout(timer);
    const s = settings as WatchdogSettings;
    for (let attempt = 1; attempt <= FENCE_ATTEMPTS; attempt++) {
      try {
        await new NodeDatabase(s.databaseUrl, s.config).fenceStale();
        log(
          "error",
          `fenced the database: ${why}; the node that starts next on it finds it fenced and acts on the cluster state`,
        );
        process.exit(0);
      } catch (err) {
        log(
          "error",
          `could not fence the database (attempt ${attempt} of ${FENCE_ATTEMPTS}): ${(err as Error).message}`,
        );
        await new Promise((r) => setTimeout(r, 1000));
      }
    }
    process.exit(1);
  })();
  return fencing;
}

function arm(validForMs: number): void {
  deadline = monotonicClock() + validForMs;
  if (timer) clearTimeout(timer);
  // A timer, not the deadline alone: after a SIGSTOP of the node this process still runs and fires.
  timer = setTimeout(
    () =>
      void fence(
        `the node's lease lapsed ${validForMs} ms after it last armed this watchdog, without a renewal (the node is frozen or cut off)`,
      ),
    validForMs,
  );
  process.stdout.write("armed\n");
}

function disarm(): void {
  deadline = null;
  if (timer) clearTimeout(timer);
  timer = null;
  process.stdout.write("disarmed\n");
}

// The answers are for the node; once it is gone (killed with arm lines still in flight) they meet a closed
// pipe. That must not end this process: the end of stdin comes next, and with it the fence.
process.stdout.on("error", () => undefined);
// Its log goes where the node's went; if that is gone too, the fence still runs unlogged.
process.stderr.on("error", () => undefined);
const lines = createInterface({ input: process.stdin });
lines.on("line", (line) => {
  if (fencing) return;
  if (settings === null) {
    settings = JSON.parse(line) as WatchdogSettings;
    return;
  }
  const [verb, value] = line.trim().split(" ");
  if (verb === "arm") arm(Number(value));
  else if (verb === "disarm") disarm();
});
lines.on("close", () => {
  // The node is gone without disarming (killed): its lease can no longer be renewed, so fence now.
  if (deadline !== null) void fence("the node process ended while it held the lease (killed)");
  else process.exit(0);
});
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    if (deadline !== null) void fence(`the watchdog got ${signal} while the node held the lease`);
    else process.exit(0);
  });
}
