import { describe, expect, it } from "vitest";
import { applierGroupId, clusterDataTopics } from "../../../src/kafka/topic-names.js";

describe("applierGroupId", () => {
  it("differs between two clusters' nodes of one name, and between the epochs of one cluster", () => {
    const config = { topicPrefix: "diffrelay" };
    const east = applierGroupId("a", clusterDataTopics(config, "east", 2).data);
    const west = applierGroupId("a", clusterDataTopics(config, "west", 2).data);
    expect(east).toBe("diffrelay-apply-a.diffrelay.east.e2");
    expect(west).not.toBe(east);
    expect(applierGroupId("a", clusterDataTopics(config, "east", 3).data)).not.toBe(east);
  });

  it("cannot be the same for two pairs of standby and topic: a standby name holds no dot", () => {
    // Joined with "-" these two would both be diffrelay-apply-a-b-c.
    expect(applierGroupId("a-b", "c")).toBe("diffrelay-apply-a-b.c");
    expect(applierGroupId("a", "b-c")).toBe("diffrelay-apply-a.b-c");
  });
});
