// A pgbench load routed by the nodes' /primary endpoint, as HAProxy would route it:
// a switchover's fence cuts its clients off the old primary, and the next run
// starts on whichever node answers /primary next.
import { runPgbench } from "../measure/pgbench.js";
import { probe, type RunningService } from "./child-services.js";

export interface ClusterNodeProcess {
  service: RunningService;
  databaseUrl: string;
}

/** One pgbench run against one primary, from its start to its end or its clients' cut-off. */
export interface LoadRun {
  node: string;
  transactions: number;
  startedAt: number;
  endedAt: number;
  /** The server's message to the clients it cut off; null when the run lasted its time. */
  cutOffBy: string | null;
}

export interface RunningLoad {
  /** Lets it run `ms` more, then waits for its last run; its runs in order. */
  stopAfter(ms: number): Promise<LoadRun[]>;
}

const POLL_MS = 100;
// Short runs, so that the load can be told to stop at any time; pgbench's -T is whole seconds.
const RUN_SECONDS = 2;

/** The node whose /primary answers 200 now, if any. */
export async function writablePrimary(nodes: ClusterNodeProcess[]): Promise<ClusterNodeProcess | null> {
  for (const node of nodes) if ((await probe(node.service, "/primary")) === 200) return node;
  return null;
}

/** Starts pgbench runs, each on the node /primary names at its start; `args(url, seconds)` gives one run's arguments. */
export function startPgbenchFollowingPrimary(
  nodes: ClusterNodeProcess[],
  args: (url: string, seconds: number) => string[],
): RunningLoad {
  const runs: LoadRun[] = [];
  let stopAt = Number.POSITIVE_INFINITY;
  let failure: unknown = null;
  const running = (async () => {
    while (stopAt - Date.now() >= 1000) {
      const primary = await writablePrimary(nodes);
      if (!primary) {
        await new Promise((r) => setTimeout(r, POLL_MS));
        continue;
      }
      const startedAt = Date.now();
      const seconds = Math.min(RUN_SECONDS, Math.floor((stopAt - startedAt) / 1000));
      try {
        const run = await runPgbench(args(primary.databaseUrl, seconds), { allowAbortedClients: true });
        runs.push({
          node: primary.service.name,
          transactions: run.transactions,
          startedAt,
          endedAt: Date.now(),
          cutOffBy: run.abortedBy,
        });
      } catch (err) {
        // Fenced between its /primary answer and pgbench's connect: the next poll finds the new primary.
        if (!/not currently accepting connections/.test(String(err))) throw err;
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
    }
  })().catch((err) => {
    // Held for stopAfter, so that the demo stops what it started before it reports the failure.
    failure = err;
  });
  return {
    async stopAfter(ms) {
      stopAt = Date.now() + ms;
      await running;
      if (failure) throw failure;
      return runs;
    },
  };
}
