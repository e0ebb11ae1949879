// The fault suite's faults, each injected on the primary's host under load: what it does, how the cluster
// gets a new primary (the nodes by themselves, or the harness's `diffrelay failover` run at once), and how
// the host comes back (its supervisor starts what died; a partition heals; a paused node resumes).
import kafkajs from "kafkajs";
import { startClusterNode, stopClusterNode } from "../../../scripts/stack/kafka-cluster.js";
import type { NetnsCluster } from "../../support/netns-cluster.js";
import { tail } from "../../support/replication-pipeline.js";
import type { CommandRun } from "../../support/role-change-cluster.js";

export const FAULT_KINDS = [
  "kill -9 of the primary's whole server",
  "kill -9 of the primary's node only",
  "kill -9 of the primary's PostgreSQL only",
  "SIGSTOP of the primary's node past its lease, then SIGCONT",
  "partition of the primary from Kafka",
  "partition of the primary from everyone",
  "kill of the Kafka partition leader during a failover",
  "a candidate killed during its promotion",
] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

/** Faults that need a 3-broker Kafka (one broker is killed). */
export const NEEDS_THREE_BROKERS: readonly FaultKind[] = [
  "kill of the Kafka partition leader during a failover",
];

/**
 * How a new primary comes: "automatic", the nodes elect one when the lease lapses; "manual", the harness
 * runs `diffrelay failover --to <next node>` at once after the fault (an operator or orchestrator that
 * noticed instantly: the figure automatic failover is compared with).
 */
export type FailoverWay = "automatic" | "manual";

/** How long a paused or partitioned primary stays so: longer than the default lease (5 s). */
export const HOLD_MS = 8000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface FaultRun {
  /** The primary the cluster ends on after this fault. */
  newPrimary: string;
  /** Problems seen on the way (a failover command's unexpected exit), each naming what and where. */
  problems: string[];
  /** What the failover commands answered, for the log. */
  said: string[];
}

/** `diffrelay failover --to`, again while it is refused because the old primary still answers healthy. */
async function manualFailover(
  nc: NetnsCluster,
  to: string,
  zeroLoss: boolean,
  problems: string[],
  said: string[],
) {
  const deadline = Date.now() + 60_000;
  for (;;) {
    const run: CommandRun = await nc.rc.failover(to);
    said.push(`failover --to ${to}: exit ${run.code}`);
    // Zero-loss mode: nothing acknowledged may be lost (0); otherwise 8 says something may be.
    if (run.code === 0 || (!zeroLoss && run.code === 8)) return;
    if (/answers and its stream flows/.test(run.output) && Date.now() < deadline) {
      await sleep(500);
      continue;
    }
    problems.push(`failover --to ${to} exited ${run.code}:\n${tail(run.output, 20)}`);
    return;
  }
}

/** Waits for a node other than `old` to answer /primary 200 (the election's winner); null on timeout. */
async function electedOtherThan(nc: NetnsCluster, old: string, timeoutMs = 60_000): Promise<string | null> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    for (const n of nc.rc.cluster.nodes)
      if (n.name !== old && (await nc.rc.cluster.probe(n.name, "/primary")) === 200) return n.name;
    await sleep(100);
  }
  return null;
}

/** The new primary: elected by the nodes, or made by the harness's failover to `to`. */
async function newPrimary(
  nc: NetnsCluster,
  way: FailoverWay,
  old: string,
  to: string,
  zeroLoss: boolean,
  run: FaultRun,
): Promise<void> {
  if (way === "manual") {
    await manualFailover(nc, to, zeroLoss, run.problems, run.said);
    run.newPrimary = to;
    return;
  }
  const elected = await electedOtherThan(nc, old);
  if (elected === null) run.problems.push(`no node other than ${old} became a writable primary within 60 s`);
  else run.newPrimary = elected;
}

/** The leader of the cluster topic's partition (what a failover writes to): a broker's node id. */
async function clusterTopicLeader(nc: NetnsCluster): Promise<number> {
  const admin = new kafkajs.Kafka({
    clientId: "failover-suite",
    brokers: nc.brokers,
    logLevel: kafkajs.logLevel.NOTHING,
  }).admin();
  await admin.connect();
  try {
    const topic = `${nc.rc.cluster.topicPrefix}.cluster.${nc.rc.cluster.name}`;
    const { topics } = await admin.fetchTopicMetadata({ topics: [topic] });
    const leader = topics[0]?.partitions[0]?.leader;
    if (leader === undefined || leader < 0) throw new Error(`topic ${topic} has no leader`);
    return leader;
  } finally {
    await admin.disconnect();
  }
}

/**
 * Injects `kind` on `primary`, gets a new primary (`to` when the harness chooses it, `third` the remaining
 * node), brings the hit host (and anything else the fault took down) back, and returns once it is back.
 */
export async function runFault(
  nc: NetnsCluster,
  kind: FaultKind,
  way: FailoverWay,
  zeroLoss: boolean,
  primary: string,
  to: string,
  third: string,
): Promise<FaultRun> {
  const { rc } = nc;
  const host = nc.host(primary);
  const run: FaultRun = { newPrimary: to, problems: [], said: [] };
  const started = Date.now();
  const holdRest = () => sleep(Math.max(0, HOLD_MS - (Date.now() - started)));
  switch (kind) {
    case "kill -9 of the primary's whole server": {
      await host.killAll();
      await newPrimary(nc, way, primary, to, zeroLoss, run);
      await rc.restartMachine(primary);
      break;
    }
    case "kill -9 of the primary's node only": {
      // The node's pid only: its database (and, with leases, its watchdog) stay.
      await rc.killNode(primary);
      await newPrimary(nc, way, primary, to, zeroLoss, run);
      rc.startNode(primary);
      break;
    }
    case "kill -9 of the primary's PostgreSQL only": {
      // The server dies (postmaster and backends, as the OOM killer or a failed disk would leave it); the
      // node lives on: it must stop renewing the lease for a database that does not answer, and fence the
      // server and rejoin as a standby once it comes back.
      await rc.killServer(primary);
      await newPrimary(nc, way, primary, to, zeroLoss, run);
      await rc.restartServer(primary);
      break;
    }
    case "SIGSTOP of the primary's node past its lease, then SIGCONT": {
      rc.process(primary).kill("SIGSTOP");
      try {
        await newPrimary(nc, way, primary, to, zeroLoss, run);
        await holdRest();
      } finally {
        rc.process(primary).kill("SIGCONT");
      }
      break;
    }
    case "partition of the primary from Kafka": {
      host.cutFromKafka(true);
      try {
        await newPrimary(nc, way, primary, to, zeroLoss, run);
        await holdRest();
      } finally {
        host.cutFromKafka(false);
      }
      break;
    }
    case "partition of the primary from everyone": {
      host.isolate(true);
      try {
        await newPrimary(nc, way, primary, to, zeroLoss, run);
        await holdRest();
      } finally {
        host.isolate(false);
      }
      break;
    }
    case "kill of the Kafka partition leader during a failover": {
      await host.killAll();
      const leader = await clusterTopicLeader(nc);
      const failingOver = newPrimary(nc, way, primary, to, zeroLoss, run);
      // During the failover: once it has begun (manual: its command runs; automatic: the lease lapses).
      await sleep(way === "manual" ? 500 : 3000);
      await stopClusterNode(nc.kafka, leader, "kill");
      try {
        await failingOver;
      } finally {
        await startClusterNode(nc.kafka, leader);
      }
      await rc.restartMachine(primary);
      break;
    }
    case "a candidate killed during its promotion": {
      await host.killAll();
      if (way === "manual") {
        // The failover to `to` reaches its promoting phase; then `to`'s node dies, and the command with it
        // (an operator's session lost); a failover to the third node supersedes it.
        const p = rc.failoverProcess(to);
        const reached = await p.waitForOutput(/failover: nodes drain and change roles/, 60_000).then(
          () => null,
          (err: Error) => `failover --to ${to} never reached its promoting phase: ${err.message}`,
        );
        await rc.killNode(to);
        p.kill("SIGKILL");
        await p.exited;
        if (reached !== null) run.problems.push(reached);
        await manualFailover(nc, third, zeroLoss, run.problems, run.said);
        run.newPrimary = third;
      } else {
        // The first node to take the lease is killed as soon as it answers /primary; the next election's
        // winner takes over.
        const candidate = await electedOtherThan(nc, primary);
        if (candidate === null) run.problems.push(`no candidate took over from ${primary} within 60 s`);
        else {
          await rc.killNode(candidate);
          const next = await electedOtherThan(nc, candidate);
          if (next === null || next === primary)
            run.problems.push(`no other node took over from the killed candidate ${candidate} within 60 s`);
          else run.newPrimary = next;
          rc.startNode(candidate);
        }
      }
      if (way === "manual") rc.startNode(to);
      await rc.restartMachine(primary);
      break;
    }
  }
  return run;
}
