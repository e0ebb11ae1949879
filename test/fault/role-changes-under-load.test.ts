// Issue 22's fault test: a 3-node cluster of real `diffrelay node` processes, each beside its own PostgreSQL
// server with synchronous_commit = on, goes through a fixed schedule of 24 steps (16 role changes and 8
// restarts) under a write load that logs every acknowledged id (the node it went to, the time):
// - switchovers;
// - failovers after the primary's node, or its whole machine (server and node), was killed with SIGKILL,
//   the node (and server) then started again as its supervisor would: it fences and rejoins by itself;
// - a switchover killed with SIGKILL at phase fencing (once the old primary fenced, failover to the same
//   target ends it), at phase promoting (its target takes the role anyway; the next switchover starts from
//   that unfinished state), and at phase promoting with its target's node killed too (failover to the third
//   node ends it);
// - restarts of every node, as primary and as standby, with its own unchanged command line (node a's holds
//   --initial-primary a): SIGTERM as a supervisor does, SIGKILL as a crash.
// After each step the cluster must settle (one epoch, phase stable, the expected primary, the others
// /replica 200); a restart must leave the epoch as it was, a role change must move it. Then, with the load
// paused: exactly one writable primary (its /primary alone answers 200, its database alone accepts a write),
// every node equal to it row for row, and every acknowledged id on it (zero-loss mode: the failovers must
// also exit 0, "nothing acknowledged lost"), or without zero-loss mode missing only where a rejoin report
// lists it (failover exits 0 or 8). Ids once on every node stay; no node holds an id the load did not write.
// A failure names the step, what was done and what was seen, with every node's status and last log lines.
// Each mode prints its counts at the end (role changes by kind, acknowledged writes, missing, reported).
import { afterAll, describe, it } from "vitest";
import { ACK_LOAD_DDL, ACK_LOAD_TABLES, AcknowledgedIdLoad } from "../support/acknowledged-id-load.js";
import { tail } from "../support/replication-pipeline.js";
import { type CheckCounts, RoleChangeChecker } from "../support/role-change-checks.js";
import { type CommandRun, RoleChangeCluster } from "../support/role-change-cluster.js";

type Change =
  | { kind: "switchover"; to: string }
  | { kind: "failover after the primary's node was killed"; to: string }
  | { kind: "failover after the primary's machine was killed"; to: string }
  /** Killed once the old primary's fence is asked for; the old primary fences; failover --to the same target. */
  | { kind: "switchover killed at fencing, then failover"; to: string }
  /** Killed once the drained end is published; the target takes the role; the next change starts from it. */
  | { kind: "switchover killed at promoting"; to: string }
  /** Killed once the drained end is published, its target's node killed too; failover --to the third node. */
  | { kind: "switchover and its target killed at promoting, then failover"; target: string; to: string }
  | { kind: "restart"; node: string; signal: "SIGTERM" | "SIGKILL" };

// The primary starts at a. Every node restarts as primary and as standby; each kind of failover and
// killed switchover comes more than once, from different nodes.
const SCHEDULE: Change[] = [
  { kind: "switchover", to: "b" },
  { kind: "restart", node: "a", signal: "SIGTERM" },
  { kind: "switchover", to: "c" },
  { kind: "restart", node: "c", signal: "SIGTERM" },
  { kind: "restart", node: "b", signal: "SIGKILL" },
  { kind: "switchover", to: "a" },
  { kind: "restart", node: "a", signal: "SIGTERM" },
  { kind: "failover after the primary's node was killed", to: "b" },
  { kind: "restart", node: "b", signal: "SIGTERM" },
  { kind: "switchover killed at fencing, then failover", to: "c" },
  { kind: "switchover", to: "a" },
  { kind: "failover after the primary's machine was killed", to: "b" },
  { kind: "restart", node: "c", signal: "SIGKILL" },
  { kind: "switchover killed at promoting", to: "c" },
  { kind: "switchover", to: "a" },
  { kind: "switchover and its target killed at promoting, then failover", target: "b", to: "c" },
  { kind: "switchover", to: "a" },
  { kind: "failover after the primary's node was killed", to: "c" },
  { kind: "restart", node: "c", signal: "SIGKILL" },
  { kind: "switchover", to: "b" },
  { kind: "failover after the primary's machine was killed", to: "a" },
  { kind: "switchover killed at fencing, then failover", to: "c" },
  { kind: "restart", node: "a", signal: "SIGKILL" },
  { kind: "switchover", to: "a" },
];

/** The log line each phase's state is published before (switchover-runner.ts). */
const PHASE_LOG = {
  fencing: /switchover: the old primary fences itself/,
  promoting: /switchover: nodes drain and change roles/,
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const cleanups: (() => Promise<void>)[] = [];

afterAll(async () => {
  for (const cleanup of cleanups) await cleanup().catch(() => undefined);
});

function label(change: Change): string {
  switch (change.kind) {
    case "restart":
      return `restart of node ${change.node} (${change.signal})`;
    case "switchover killed at fencing, then failover":
      return `switchover to ${change.to} killed at phase fencing, then failover to ${change.to}`;
    case "switchover killed at promoting":
      return `switchover to ${change.to} killed at phase promoting`;
    case "switchover and its target killed at promoting, then failover":
      return `switchover to ${change.target} and node ${change.target} killed at phase promoting, then failover to ${change.to}`;
    default:
      return `${change.kind} to ${change.to}`;
  }
}

/** A failure of one step: what was done, what was seen, and every node's state. */
class StepFailed extends Error {}

async function run(zeroLoss: boolean): Promise<void> {
  const mode = zeroLoss ? "zero-loss" : "async";
  const t0 = Date.now();
  const log = (what: string) => console.log(`[${mode}] ${((Date.now() - t0) / 1000).toFixed(1)} s: ${what}`);
  const rc = await RoleChangeCluster.start({
    label: zeroLoss ? "rczl" : "rcas",
    zeroLoss,
    ddl: ACK_LOAD_DDL,
    tables: ACK_LOAD_TABLES,
  });
  const load = new AcknowledgedIdLoad(rc.cluster, 4, 20);
  cleanups.push(async () => {
    await load.stop();
    await rc.destroy();
  });
  const checker = new RoleChangeChecker(rc, load, zeroLoss);
  const byKind = new Map<string, number>();
  const failoverExitCodes = new Map<number | null, number>();
  const history: string[] = [];
  let primary = "a";
  let epoch = 0;
  let counts: CheckCounts | undefined;
  let nodesEqual = 0;
  log("cluster running, a primary, b and c seeded and following");

  const summary = () =>
    [
      `[${mode}] ${byKind.size ? [...byKind].map(([k, n]) => `${k}: ${n}`).join("; ") : "no role change done"}`,
      `[${mode}] steps done: ${[...byKind.values()].reduce((a, b) => a + b, 0)} of ${SCHEDULE.length}; epoch ${epoch}; failover exit codes: ${[...failoverExitCodes].map(([code, n]) => `${code} ×${n}`).join(", ") || "none yet"}`,
      `[${mode}] acknowledged writes: ${load.acknowledged.length}; unanswered (session ended under the INSERT): ${load.unanswered.length}; refused read-only: ${load.refused.length}`,
      `[${mode}] acknowledged ids missing on the primary: ${counts?.missing ?? "not checked"}; ids listed by rejoin reports: ${counts?.reported ?? 0}; rows: ${counts?.rows ?? "?"}`,
      `[${mode}] checks with all 3 nodes equal: ${nodesEqual}; ${((Date.now() - t0) / 1000).toFixed(0)} s`,
    ].join("\n");

  const fail = async (step: string, seen: string[]): Promise<never> => {
    throw new StepFailed(
      `${step}:\n  ${seen.join("\n  ")}\n\nsteps done:\n${history.join("\n") || "(none)"}\n\nnodes:\n${await rc.describe()}\n\n${summary()}\n\n${rc.outputs()}`,
    );
  };

  let failoverSaid = "";
  const expectExit = (what: string, runResult: CommandRun, allowed: number[]) => {
    if (what.startsWith("failover")) {
      failoverExitCodes.set(runResult.code, (failoverExitCodes.get(runResult.code) ?? 0) + 1);
      failoverSaid = `; failover exit ${runResult.code}: ${failoverVerdict(runResult.output)}`;
    }
    return allowed.includes(runResult.code ?? -1)
      ? []
      : [
          `${what} exited ${runResult.code} (expected ${allowed.join(" or ")}):\n${tail(runResult.output, 30)}`,
        ];
  };
  // Zero-loss mode: the failover knows nothing acknowledged is lost (exit 0). Without it: 8, maybe lost.
  const failoverExits = zeroLoss ? [0] : [0, 8];

  /** Runs a switchover to `to` and kills it with SIGKILL right after it published `phase`. */
  const killSwitchoverAt = async (phase: keyof typeof PHASE_LOG, to: string): Promise<string[]> => {
    const p = rc.switchoverProcess(to);
    const reached = await p.waitForOutput(PHASE_LOG[phase], 60_000).then(
      () => null,
      (err: Error) => `switchover --to ${to} never reached phase ${phase}: ${err.message}`,
    );
    p.kill("SIGKILL");
    await p.exited;
    return reached === null ? [] : [reached];
  };

  await rc.cluster.waitFor("a", "/primary", 200);
  load.start();
  try {
    for (const [i, change] of SCHEDULE.entries()) {
      const step = `step ${i + 1}/${SCHEDULE.length} (${label(change)}; primary ${primary}, epoch ${epoch})`;
      const before = primary;
      const seen: string[] = [];
      const started = Date.now();
      failoverSaid = "";
      let unfinished = false;
      switch (change.kind) {
        case "switchover": {
          const result = await rc.switchover(change.to);
          seen.push(...expectExit(`switchover --to ${change.to}`, result, [0]));
          primary = change.to;
          break;
        }
        case "failover after the primary's node was killed": {
          await rc.killNode(before);
          const result = await rc.failover(change.to);
          seen.push(...expectExit(`failover --to ${change.to}`, result, failoverExits));
          // Its supervisor starts it again: it finds itself left behind, fences, rejoins.
          rc.startNode(before);
          primary = change.to;
          break;
        }
        case "failover after the primary's machine was killed": {
          await rc.killMachine(before);
          const result = await rc.failover(change.to);
          seen.push(...expectExit(`failover --to ${change.to}`, result, failoverExits));
          await rc.restartMachine(before);
          primary = change.to;
          break;
        }
        case "switchover killed at fencing, then failover": {
          seen.push(...(await killSwitchoverAt("fencing", change.to)));
          if (seen.length) break;
          // The old primary fences for the change nobody drives any more; the failover comes once it has
          // (it left the primary role for the switchover's epoch), so that each run is the same.
          const fenced = await waitUntil(async () => {
            const s = await rc.status(before);
            return s?.clusterEpoch === epoch + 1 && s.epoch === epoch + 1 && s.nodeRole !== "primary";
          }, 60_000);
          if (!fenced)
            seen.push(`the old primary ${before} did not fence for epoch ${epoch + 1} within 60 s`);
          // Its report (the fence's end offset) reaches the cluster topic right after.
          await sleep(1000);
          const result = await rc.failover(change.to);
          seen.push(...expectExit(`failover --to ${change.to}`, result, failoverExits));
          primary = change.to;
          break;
        }
        case "switchover killed at promoting": {
          // The nodes finish their parts without the command: the target serves, the others follow it,
          // and the state stays at phase promoting until the next change starts from it.
          seen.push(...(await killSwitchoverAt("promoting", change.to)));
          primary = change.to;
          unfinished = true;
          break;
        }
        case "switchover and its target killed at promoting, then failover": {
          seen.push(...(await killSwitchoverAt("promoting", change.target)));
          if (seen.length) break;
          await rc.killNode(change.target);
          const result = await rc.failover(change.to);
          seen.push(...expectExit(`failover --to ${change.to}`, result, failoverExits));
          // Its supervisor starts it again: it follows the new primary (rejoining if it had taken writes).
          rc.startNode(change.target);
          primary = change.to;
          break;
        }
        case "restart":
          await rc.restartNode(change.node, change.signal);
          break;
      }
      if (seen.length) await fail(step, seen);

      const acted = Date.now();
      const settled = await checker.settle(
        primary,
        90_000,
        unfinished ? ["stable", "promoting"] : ["stable"],
      );
      if ("problem" in settled) await fail(step, [settled.problem]);
      const now = (settled as { epoch: number }).epoch;
      if (change.kind === "restart" && now !== epoch)
        await fail(step, [`a restart moved the cluster from epoch ${epoch} to ${now}`]);
      if (change.kind !== "restart" && now <= epoch)
        await fail(step, [`the role change left the cluster at epoch ${now} (was ${epoch})`]);
      epoch = now;

      const settledAt = Date.now();
      await load.pause();
      const result = await checker.check(primary, epoch);
      if (result.problems.length) await fail(step, result.problems);
      counts = result.counts;
      nodesEqual++;
      const kind =
        change.kind === "restart"
          ? `restart of the ${change.node === primary ? "primary" : "standby"} (${change.signal})`
          : change.kind;
      byKind.set(kind, (byKind.get(kind) ?? 0) + 1);
      history.push(`  ${step}: ok, epoch ${epoch}, ${counts.acknowledged} acknowledged, ${counts.rows} rows`);
      log(
        `${step.replace(/; primary.*\)/, ")")} done: epoch ${epoch}, primary ${primary}, ${counts.acknowledged} acknowledged, ${counts.missing} missing, ${counts.reported} reported (change ${acted - started} ms, settle ${settledAt - acted} ms, checks ${Date.now() - settledAt} ms)${failoverSaid}`,
      );

      // The load goes on at the primary before the next change.
      const target = load.acknowledged.length + 20;
      load.resume();
      if (!(await waitUntil(async () => load.acknowledged.length >= target, 30_000)))
        await fail(step, [
          `the load committed ${load.acknowledged.length - target + 20} of 20 writes on ${primary} within 30 s after the check`,
        ]);
      await sleep(500);
    }
  } finally {
    await load.stop();
  }
  console.log(summary());
}

/** What a failover's --json report says of the loss and where it knew the old capture's mode from. */
function failoverVerdict(output: string): string {
  const line = output.split("\n").find((l) => l.startsWith('{"outcome"'));
  if (!line) return "no report";
  const report = JSON.parse(line);
  const known = report.oldPrimary?.lastKnown;
  return `${report.outcome}${known ? `, zero-loss ${known.zeroLoss} (from ${known.from ?? "?"})` : ""}`;
}

async function waitUntil(done: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!(await done())) {
    if (Date.now() > deadline) return false;
    await sleep(100);
  }
  return true;
}

describe("role changes under a write load: one writable primary, equal nodes, every acknowledged id accounted for", () => {
  it("zero-loss mode: every acknowledged id survives every role change", { timeout: 480_000 }, () =>
    run(true),
  );
  it(
    "without zero-loss mode: every acknowledged id lost is one a rejoin report lists",
    { timeout: 480_000 },
    () => run(false),
  );
});
