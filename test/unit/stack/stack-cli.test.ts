import { spawnSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { REPO_ROOT } from "../../../scripts/stack/stack-state.js";

/** `npm run stack -- <args>`, as a user runs it (without npm's own noise). */
const stack = (...args: string[]) =>
  spawnSync(process.execPath, ["--import", "tsx", "scripts/stack.ts", ...args], {
    cwd: REPO_ROOT,
    encoding: "utf8",
    // tsx compiles the script first: over 30 s on a 2-core machine at a load average of 30.
    timeout: 110_000,
  });

describe("npm run stack -- …", () => {
  it("--help prints the usage and exits 0, without a stack trace", () => {
    const r = stack("--help");
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^usage: npm run stack -- up\|down\|env\|status/m);
    expect(r.stdout).toContain("--pg=debian|embedded|14|15|16|17|18");
    expect(r.stdout).toContain("--standby-pg=");
    expect(r.stderr).not.toMatch(/ERR_PARSE_ARGS|at .*\.js:\d+/);
  });

  it("an unknown option gets one line naming it, then the usage, and exit 2", () => {
    const r = stack("up", "--bogus");
    expect(r.status).toBe(2);
    const lines = r.stderr.trimEnd().split("\n");
    expect(lines[0]).toBe("unknown option --bogus");
    expect(r.stderr).toMatch(/^usage: npm run stack -- up\|down\|env\|status/m);
    expect(r.stderr).not.toMatch(/ERR_PARSE_ARGS|at .*\.js:\d+/);
  });

  it("an unknown PostgreSQL version is refused in one line, with exit 2, before anything starts", () => {
    const r = stack("up", "--pg=13", "--base-dir=/tmp/diffrelay-stack-never-made");
    expect(r.status).toBe(2);
    expect(r.stderr.trimEnd()).toBe('unknown PostgreSQL "13" (debian|embedded|14|15|16|17|18)');
  });
});
