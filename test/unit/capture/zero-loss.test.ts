import { describe, expect, it } from "vitest";
import {
  parseSynchronousStandbyNames,
  zeroLossGuarantee,
  zeroLossSetting,
} from "../../../connectors/postgres-source/zero-loss.js";

describe("synchronous_standby_names", () => {
  it("parses the three forms PostgreSQL accepts", () => {
    expect(parseSynchronousStandbyNames("")).toBeNull();
    expect(parseSynchronousStandbyNames("  ")).toBeNull();
    expect(parseSynchronousStandbyNames("a, b")).toEqual({ method: "first", count: 1, names: ["a", "b"] });
    expect(parseSynchronousStandbyNames('FIRST 2 (a, "B c")')).toEqual({
      method: "first",
      count: 2,
      names: ["a", "B c"],
    });
    expect(parseSynchronousStandbyNames("any 1 (x,y)")).toEqual({
      method: "any",
      count: 1,
      names: ["x", "y"],
    });
    expect(parseSynchronousStandbyNames("2 (x, y, z)")).toEqual({
      method: "first",
      count: 2,
      names: ["x", "y", "z"],
    });
    expect(parseSynchronousStandbyNames('"say ""hi"""')?.names).toEqual(['say "hi"']);
  });

  it("calls the capture required only when no other standby can release a commit", () => {
    const app = "diffrelay_app";
    expect(zeroLossGuarantee("", app)).toBe("off");
    expect(zeroLossGuarantee("phys1", app)).toBe("off");
    expect(zeroLossGuarantee("diffrelay_app", app)).toBe("required");
    expect(zeroLossGuarantee('"DIFFRELAY_APP"', app)).toBe("required");
    expect(zeroLossGuarantee("FIRST 2 (phys1, diffrelay_app)", app)).toBe("required");
    expect(zeroLossGuarantee("ANY 2 (phys1, diffrelay_app)", app)).toBe("required");
    // Another standby can stand in for it.
    expect(zeroLossGuarantee("ANY 1 (phys1, diffrelay_app)", app)).toBe("optional");
    expect(zeroLossGuarantee("diffrelay_app, phys1", app)).toBe("optional");
    expect(zeroLossGuarantee("phys1, diffrelay_app", app)).toBe("optional");
    expect(zeroLossGuarantee("*", app)).toBe("optional");
    expect(zeroLossGuarantee("FIRST 2 (diffrelay_app, *)", app)).toBe("optional");
  });

  it("sets a value that names the capture alone", () => {
    expect(zeroLossSetting("diffrelay_app")).toBe('"diffrelay_app"');
    expect(zeroLossGuarantee(zeroLossSetting("diffrelay_app"), "diffrelay_app")).toBe("required");
  });
});
