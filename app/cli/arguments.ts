import { parseArgs } from "node:util";
import { ConfigError } from "../../src/config/config-error.js";
import { SETTINGS, type Setting } from "../../src/config/settings.js";
import type { Command } from "./command.js";

export type FlagValues = Record<string, string | boolean | undefined>;

type OptionSpec = { type: "string" | "boolean"; short?: string };

const SETTING_BY_PATH = new Map(SETTINGS.map((s) => [s.path, s]));

/** The settings a command reads, in the order of the settings table (so help reads like the docs). */
export function commandSettings(command: Command): Setting[] {
  for (const path of command.settings) {
    if (!SETTING_BY_PATH.has(path))
      throw new Error(`command lists ${path}, which is not in src/config/settings.ts`);
  }
  const wanted = new Set(command.settings);
  return SETTINGS.filter((s) => wanted.has(s.path));
}

/** Every flag a command accepts: --config, --help, its settings' flags and its own flags. */
export function commandOptions(command: Command): Record<string, OptionSpec> {
  const options: Record<string, OptionSpec> = {
    config: { type: "string" },
    help: { type: "boolean", short: "h" },
  };
  for (const s of commandSettings(command))
    options[s.flag] = { type: s.kind === "boolean" ? "boolean" : "string" };
  for (const [flag, spec] of Object.entries(command.flags ?? {})) options[flag] = { type: spec.type };
  return options;
}

/** Commands (by name) that accept `flag`, for the error that refuses it elsewhere. */
export function commandsTaking(flag: string, commands: Record<string, Command>): string[] {
  return Object.entries(commands)
    .filter(([, command]) => flag in commandOptions(command))
    .map(([name]) => name);
}

export type CommandLine = { help: true } | { help: false; flags: FlagValues };

/**
 * Parses one command's arguments. A flag of a setting (or of a flag) that this
 * command does not read is refused by name, with the commands that do read it:
 * silently accepting it would let an operator believe it had an effect.
 */
export function parseCommandLine(
  name: string,
  command: Command,
  args: string[],
  commands: Record<string, Command>,
): CommandLine {
  const options = commandOptions(command);
  // A lenient pass first: --help wins over every other problem, and unknown
  // flags are named here before the strict pass words them generically.
  const { tokens } = parseArgs({ args, options, strict: false, allowPositionals: true, tokens: true });
  if (tokens.some((t) => t.kind === "option" && t.name === "help")) return { help: true };
  for (const token of tokens) {
    if (token.kind !== "option" || token.name in options) continue;
    const others = commandsTaking(token.name, commands);
    if (others.length > 0) {
      throw new ConfigError(
        `diffrelay ${name}: ${token.rawName} is not used by ${name}; it is used by ${others.join(", ")} (see diffrelay ${name} --help)`,
      );
    }
  }
  try {
    const parsed = parseArgs({ args, options, allowPositionals: false, strict: true });
    return { help: false, flags: parsed.values as FlagValues };
  } catch (err) {
    throw new ConfigError(`diffrelay ${name}: ${(err as Error).message} (see diffrelay ${name} --help)`);
  }
}
