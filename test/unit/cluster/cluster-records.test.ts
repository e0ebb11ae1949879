import { describe, expect, it } from "vitest";
import { decodeRecord, encodeRecord } from "../../../operations/cluster/cluster-state.js";
import { claimedEpoch, clusterDataTopics, epochClaimTopic } from "../../../src/kafka/topic-names.js";

const state = {
  cluster: "app",
  epoch: 3,
  primary: "b",
  members: [{ name: "b", apiUrl: "http://b:9464" }],
  phase: "stable",
  topics: { data: "diffrelay.app.e3", schemas: "diffrelay.app.e3.schemas" },
  previous: null,
  writtenBy: "test",
  writtenAt: "2026-12-01T00:00:00Z",
};

describe("cluster records and topic names", () => {
  it("a state round-trips under the key of its epoch; a key naming another epoch is refused", () => {
    const { key, value } = encodeRecord({ type: "state", state });
    expect(key).toBe("epoch/3");
    expect(decodeRecord(key, value)).toEqual({ type: "state", state });
    expect(decodeRecord("epoch/4", value)).toBeInstanceOf(Error);
    expect(decodeRecord("epoch/3", "{")).toBeInstanceOf(Error);
    expect(decodeRecord("other", value)).toBeInstanceOf(Error);
  });

  it("claim topics name their epoch, and only this cluster's claims count", () => {
    const topic = epochClaimTopic("diffrelay", "app", 12);
    expect(topic).toBe("diffrelay.cluster.app.claim.e12");
    expect(claimedEpoch("diffrelay", "app", topic)).toBe(12);
    expect(claimedEpoch("diffrelay", "app2", topic)).toBeNull();
    expect(claimedEpoch("diffrelay", "app", "diffrelay.cluster.app.claim.e012")).toBeNull();
    expect(clusterDataTopics({ topicPrefix: "diffrelay" }, "app", 0).data).toBe("diffrelay.app");
    expect(clusterDataTopics({ topicPrefix: "diffrelay" }, "app", 2).schemas).toBe(
      "diffrelay.app.e2.schemas",
    );
  });
});
