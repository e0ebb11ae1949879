import { describe, expect, it } from "vitest";
import { spawnDiffrelay } from "../support/child-process.js";

describe("diffrelay CLI configuration errors", () => {
  it("exits 2 naming the key before connecting to anything", async () => {
    // Port 9 (discard) on loopback: if the CLI tried to connect, the error would be a connection error, not this.
    const child = spawnDiffrelay(["capture", "--source-url", "not-a-url", "--brokers", "127.0.0.1:9"], {});
    const exit = await child.exited;
    expect(exit.code).toBe(2);
    expect(child.output()).toMatch(/source\.url: given "not-a-url" \(from --source-url\)/);
  });

  it("exits 2 for an unknown flag and for a missing required setting", async () => {
    const unknown = spawnDiffrelay(["apply", "--no-such-flag"], {});
    expect((await unknown.exited).code).toBe(2);
    expect(unknown.output()).toMatch(/no-such-flag/);
    const missing = spawnDiffrelay(["apply", "--brokers", "127.0.0.1:9"], {});
    expect((await missing.exited).code).toBe(2);
    expect(missing.output()).toMatch(/standby\.name is required.*--standby-name or \$DIFFRELAY_STANDBY_NAME/);
  });

  it("never prints a password from a connection string", async () => {
    const child = spawnDiffrelay(
      ["apply", "--standby-url", "postgres://u:sup3rsecret@127.0.0.1:9/db", "--standby-name", "bad name!"],
      {},
    );
    await child.exited;
    expect(child.output()).not.toContain("sup3rsecret");
  });

  it("reads a value that begins with a dash in the --flag=value form, and refuses it as a separate word without printing it", async () => {
    // A generated password starts with '-' once in 64 (base64url): a separate word reads as a flag.
    const separate = spawnDiffrelay(["node", "--peer-password", "-s3cret"], {});
    expect((await separate.exited).code).toBe(2);
    expect(separate.output()).toMatch(/'--peer-password' argument is ambiguous[\s\S]*--peer-password=/);
    expect(separate.output()).not.toContain("s3cret");
    const joined = spawnDiffrelay(["node", "--peer-password=-s3cret"], {});
    expect((await joined.exited).code).toBe(2);
    expect(joined.output()).toMatch(/cluster\.name is required/);
    expect(joined.output()).not.toMatch(/ambiguous|s3cret/);
  });

  it("answers --help, -h and --version, and refuses a flag the command does not read", async () => {
    for (const flag of ["--help", "-h"]) {
      const help = spawnDiffrelay(["seed", flag], {});
      expect((await help.exited).code).toBe(0);
      expect(help.output()).toMatch(/--parallel <n>\s+DIFFRELAY_SEED_PARALLEL\s+4/);
    }
    const version = spawnDiffrelay(["--version"], {});
    expect((await version.exited).code).toBe(0);
    expect(version.output().trim()).toMatch(/^\d+\.\d+\.\d+/);
    const unused = spawnDiffrelay(["seed", "--metrics-port", "9"], {});
    expect((await unused.exited).code).toBe(2);
    expect(unused.output()).toMatch(/--metrics-port is not used by seed; it is used by capture, apply/);
  });
});
