import { describe, expect, it } from "vitest";
import { type RejoinReport, renderRejoinReport } from "../../../operations/rejoin/index.js";

const report: RejoinReport = {
  standbyName: "a",
  oldTopic: "dr.app",
  newTopic: "dr.app.e2",
  epoch: 2,
  newPrimaryHoldsLsn: "0/10",
  unpublished: [],
  method: "rewind",
  reseedReasons: [],
  rowsRewound: 0,
  tablesReseeded: [],
  droppedSlot: null,
  reportId: "1",
};

describe("the rejoin report", () => {
  it("names each epoch between the old and the new one, applied to its drained end", () => {
    expect(
      renderRejoinReport({ ...report, followed: [{ topic: "dr.app.e1", epoch: 1, endOffset: "25" }] }),
    ).toContain(
      "rewound 0 row change(s); applied dr.app.e1 (epoch 1) to offset 25, then follows dr.app.e2 (epoch 2) from its start",
    );
    expect(renderRejoinReport(report)).toContain(
      "rewound 0 row change(s); follows dr.app.e2 (epoch 2) from its start",
    );
  });
});
