import type { Admin } from "kafkajs";
import { applierGroupId } from "../../src/kafka/topic-names.js";
import { APPLIER_SESSION_TIMEOUT_MS } from "./apply-service.js";

/**
 * Whether a standby's applier is running, judged by its consumer group's
 * members. A killed applier stays a member until its session times out, so a
 * member is given that long (plus a margin) to go before the answer is "running".
 */
export async function applierStillRunning(admin: Admin, standbyName: string): Promise<number> {
  const groupId = applierGroupId(standbyName);
  const deadline = Date.now() + APPLIER_SESSION_TIMEOUT_MS + 5000;
  for (;;) {
    const { groups } = await admin.describeGroups([groupId]);
    const members = groups[0]?.members.length ?? 0;
    if (members === 0 || Date.now() > deadline) return members;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
}
