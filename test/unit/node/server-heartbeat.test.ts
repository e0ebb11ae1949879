import { describe, expect, it } from "vitest";
import { isServerDown } from "../../../operations/node/node-database.js";
import { ServerHeartbeat } from "../../../operations/node/server-heartbeat.js";

describe("the server heartbeat (a primary renews its lease only while its server answers)", () => {
  it("is silent from the start until the server answers, then again once it has not answered for the given time", async () => {
    let t = 0;
    let answers = false;
    const heartbeat = new ServerHeartbeat(
      async () => {
        if (!answers) throw new Error("connect ECONNREFUSED 127.0.0.1:5432");
      },
      () => t,
      1000,
    );
    expect(await heartbeat.check()).toBe("connect ECONNREFUSED 127.0.0.1:5432");
    expect(heartbeat.silence(5000)).toMatch(/has not answered since the node started \(connect ECONNREFUSED/);
    answers = true;
    t = 1000;
    expect(await heartbeat.check()).toBeNull();
    t = 5999;
    expect(heartbeat.silence(5000)).toBeNull();
    answers = false;
    await heartbeat.check();
    t = 6000;
    // Counted from when the last answered question was asked (t = 1000), not from the failures since.
    expect(heartbeat.silence(5000)).toMatch(/has not answered for 5000 ms \(connect ECONNREFUSED/);
  });

  it("counts a probe that hangs as no answer", async () => {
    const heartbeat = new ServerHeartbeat(
      () => new Promise<void>(() => undefined),
      () => 0,
      10,
    );
    expect(await heartbeat.check()).toBe("no answer within 50 ms");
  });
});

describe("isServerDown", () => {
  const withCode = (code: string, message = "x") => Object.assign(new Error(message), { code });

  it("is true for a server that is down, restarting or in crash recovery, also under a wrapping error", () => {
    expect(isServerDown(withCode("ECONNREFUSED"))).toBe(true);
    expect(isServerDown(withCode("57P03", "the database system is in recovery mode"))).toBe(true);
    expect(isServerDown(new Error("Connection terminated unexpectedly"))).toBe(true);
    expect(
      isServerDown(new Error("no connection to another database", { cause: withCode("ECONNREFUSED") })),
    ).toBe(true);
  });

  it("is false for a server that answers but refuses (a fenced database, a bad password)", () => {
    expect(isServerDown(withCode("55000", 'database "x" is not currently accepting connections'))).toBe(
      false,
    );
    expect(isServerDown(withCode("28P01", "password authentication failed"))).toBe(false);
  });
});
