import type { Admin } from "kafkajs";
import { applierGroupId } from "../../src/kafka/topic-names.js";
import { APPLIER_SESSION_TIMEOUT_MS } from "./apply-service.js";

/**
 * Throws `refuse(why)` while the applier of `standbyName` for `dataTopic` runs,
 * for operations that change what it reads or writes (seed, promote, rejoin);
 * `refuse` gives the caller's own error, so the caller keeps its exit code.
 *
 * Its Kafka consumer group (applierGroupId) has members
 * exactly while it runs. A killed applier stays a member until its session
 * times out, so a member is given that long (plus a margin) to go: the answer
 * is "running" a little longer than needed, never shorter. The position row's
 * updated_at cannot tell: an idle applier does not write, and a seed just run
 * wrote it.
 */
export async function assertApplierStopped(
  admin: Admin,
  standbyName: string,
  dataTopic: string,
  refuse: (why: string) => Error,
): Promise<void> {
  const groupId = applierGroupId(standbyName, dataTopic);
  const members = await groupMembersAfterTimeout(admin, groupId);
  if (members > 0) {
    throw refuse(
      `the applier of standby "${standbyName}" for topic ${dataTopic} is running (consumer group ${groupId} has ${members} member(s))`,
    );
  }
}

async function groupMembersAfterTimeout(admin: Admin, groupId: string): Promise<number> {
  const deadline = Date.now() + APPLIER_SESSION_TIMEOUT_MS + 5000;
  for (;;) {
    const { groups } = await admin.describeGroups([groupId]);
    const members = groups[0]?.members.length ?? 0;
    if (members === 0 || Date.now() > deadline) return members;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
