import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { commandSettings, parseCommandLine } from "../../../app/cli/arguments.js";
import { COMMANDS } from "../../../app/cli/commands/index.js";
import { bashCompletion } from "../../../app/cli/completion.js";
import { commandHelp } from "../../../app/cli/help.js";
import { ConfigError } from "../../../src/config/config-error.js";
import { configSchema } from "../../../src/config/config-schema.js";
import { SETTINGS } from "../../../src/config/settings.js";

const seed = COMMANDS.seed as NonNullable<(typeof COMMANDS)["seed"]>;

describe("command settings", () => {
  it("every command lists only known settings, and every setting is read by some command", () => {
    const used = new Set(Object.values(COMMANDS).flatMap((c) => commandSettings(c).map((s) => s.path)));
    expect(SETTINGS.filter((s) => !used.has(s.path)).map((s) => s.path)).toEqual([]);
    for (const command of Object.values(COMMANDS))
      for (const path of command.required ?? []) expect(command.settings).toContain(path);
  });

  it("refuses a flag the command does not read, naming the commands that do", () => {
    expect(() => parseCommandLine("seed", seed, ["--metrics-port", "9"], COMMANDS)).toThrow(
      new ConfigError(
        "diffrelay seed: --metrics-port is not used by seed; it is used by capture, apply, node (see diffrelay seed --help)",
      ),
    );
    expect(() => parseCommandLine("seed", seed, ["--json"], COMMANDS)).toThrow(
      /used by verify, status, promote/,
    );
    expect(() => parseCommandLine("seed", seed, ["--no-such-flag"], COMMANDS)).toThrow(/no-such-flag/);
    expect(parseCommandLine("seed", seed, ["--parallel", "2", "--create-schema"], COMMANDS)).toEqual({
      help: false,
      flags: { parallel: "2", "create-schema": true },
    });
  });

  it("--help and -h win over every other argument", () => {
    expect(parseCommandLine("seed", seed, ["--bogus", "-h"], COMMANDS)).toEqual({ help: true });
    expect(parseCommandLine("seed", seed, ["--help"], COMMANDS)).toEqual({ help: true });
  });
});

describe("help", () => {
  it("lists the command's own settings with flag, variable and the schema's default", () => {
    const help = commandHelp("seed", seed);
    const defaults = configSchema.parse({});
    expect(help).toMatch(
      new RegExp(`--parallel <n>\\s+DIFFRELAY_SEED_PARALLEL\\s+${defaults.seed.parallel}\\n\\s+tables`),
    );
    expect(help).toMatch(/--source-url <url>\s+DIFFRELAY_SOURCE_URL\s+required/);
    expect(help).toMatch(/--create-schema/);
    expect(help).not.toMatch(/--metrics-port|--compression|--apply-max-rows/);
  });

  it("shows command-specific flags with the defaults the command uses", () => {
    const help = commandHelp("verify", COMMANDS.verify as NonNullable<(typeof COMMANDS)["verify"]>);
    expect(help).toMatch(/--max-attempts <n>\s+30\n\s+snapshots tried/);
    expect(help).toMatch(/--chunk-rows <n>\s+10000/);
  });

  it("shows enum values from the schema", () => {
    const help = commandHelp("capture", COMMANDS.capture as NonNullable<(typeof COMMANDS)["capture"]>);
    expect(help).toMatch(/--compression <none\|gzip\|snappy>\s+DIFFRELAY_COMPRESSION\s+gzip/);
    expect(help).toMatch(/--max-message-bytes <n>\s+DIFFRELAY_MAX_MESSAGE_BYTES\s+524288 \(512 KiB\)/);
    expect(help).toMatch(/log level; one of fatal, error, warn, info, debug, trace/);
  });
});

describe("bash completion", () => {
  // Runs the generated function in a real bash the way readline would, and prints what it offers.
  const complete = (...words: string[]) =>
    execFileSync(
      "bash",
      [
        "-c",
        `${bashCompletion(COMMANDS)}\nCOMP_WORDS=(${words.map((w) => `'${w}'`).join(" ")}); COMP_CWORD=${words.length - 1}; _diffrelay; echo "\${COMPREPLY[*]}"`,
      ],
      { encoding: "utf8" },
    ).trim();

  it("offers commands, the command's own flags, and enum values", () => {
    expect(complete("diffrelay", "se")).toBe("seed");
    expect(complete("diffrelay", "seed", "--par")).toBe("--parallel");
    expect(complete("diffrelay", "seed", "--metrics-")).toBe("");
    expect(complete("diffrelay", "capture", "--compression", "")).toBe("none gzip snappy");
    expect(complete("diffrelay", "completion", "")).toBe("bash zsh");
  });
});
