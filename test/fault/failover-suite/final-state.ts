// What the fault suite's checker needs from the cluster at the end, with the load paused: each node's
// /primary answer, whether its database accepts a write, `diffrelay verify` of each standby against the
// primary, the ids on the primary and the ids the rejoin reports list.
import { spawnDiffrelay } from "../../support/child-process.js";
import type { FinalNode, FinalState } from "../../support/history-check.js";
import { exitWithin, tail } from "../../support/replication-pipeline.js";
import type { RoleChangeChecker } from "../../support/role-change-checks.js";
import { NODE_NAMES, type RoleChangeCluster } from "../../support/role-change-cluster.js";
import { runSql } from "../../support/services.js";

/** `diffrelay verify` of `standby` against the primary at the cluster's epoch: its differences, if any. */
async function verify(
  rc: RoleChangeCluster,
  primary: string,
  standby: string,
  epoch: number,
): Promise<string[]> {
  const { cluster } = rc;
  // The epoch's topic is named from the cluster's first one: verify adds `.e<epoch>` to --topic itself.
  const topic = `${cluster.topicPrefix}.${cluster.name}`;
  const brokers = cluster.clusterArgs()[cluster.clusterArgs().indexOf("--brokers") + 1] as string;
  const p = spawnDiffrelay([
    "verify",
    "--source-url",
    rc.url(primary),
    "--brokers",
    brokers,
    "--topic",
    topic,
    "--epoch",
    String(epoch),
    "--standby-url",
    rc.url(standby),
    "--standby-name",
    standby,
    "--json",
  ]);
  const exit = await exitWithin(p, 300_000);
  return exit.code === 0 ? [] : [`diffrelay verify exited ${exit.code}: ${tail(p.output(), 15)}`];
}

export async function finalState(
  rc: RoleChangeCluster,
  checker: RoleChangeChecker,
  zeroLoss: boolean,
  primary: string,
  epoch: number,
): Promise<FinalState> {
  const nodes: FinalNode[] = [];
  for (const name of NODE_NAMES) {
    const accepted = await checker.acceptsWrite(rc.url(name));
    nodes.push({
      name,
      primaryAnswer: await rc.cluster.probe(name, "/primary"),
      // null: refused as read-only (or no connections taken, fenced); the primary's answer is "accepted".
      acceptsWrite: accepted?.startsWith("accepted") === true,
      differences: name === primary ? [] : await verify(rc, primary, name, epoch),
    });
  }
  const { rows } = await runSql<{ id: string }>(
    rc.url(primary),
    "SELECT id::text FROM acked_ids WHERE id > 0",
  );
  return {
    zeroLoss,
    primary,
    idsOnPrimary: new Set(rows.map((r) => Number(r.id))),
    reportedIds: checker.reportedIds(),
    nodes,
  };
}
