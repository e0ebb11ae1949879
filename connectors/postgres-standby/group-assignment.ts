import { DiffrelayError } from "../../src/errors/diffrelay-error.js";

/**
 * An applier's consumer group is named after its standby and its topic, which
 * has one partition, which the group gives to one member only. A member left
 * without it (another applier of this topic runs under the same standby name)
 * would sit joined, healthy and idle: it must stop instead.
 */
export class StandbyNameClashError extends DiffrelayError {
  override readonly name = "StandbyNameClashError";

  constructor(groupId: string, topic: string, partition: number, assigned: Record<string, number[]>) {
    const others = Object.entries(assigned)
      .map(([t, partitions]) => `${t} [${partitions.join(", ")}]`)
      .join("; ");
    super(
      "setup",
      `consumer group ${groupId} gave this applier no ${topic} partition ${partition}` +
        `${others ? ` (it was given ${others})` : ""}: another applier runs under the same standby name. ` +
        "Each standby of a topic needs a name of its own: stop the other applier, or rename this standby (--standby-name)",
    );
  }
}

/** Throws unless the group's assignment holds the applier's partition. */
export function requireAssignedPartition(
  groupId: string,
  topic: string,
  partition: number,
  assigned: Record<string, number[]>,
): void {
  if (assigned[topic]?.includes(partition)) return;
  throw new StandbyNameClashError(groupId, topic, partition, assigned);
}
