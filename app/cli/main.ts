import { loadConfig, requireSetting } from "../../src/config/config-loader.js";
import { errorPolicy } from "../../src/errors/error-policy.js";
import { EXIT } from "../../src/errors/exit-codes.js";
import { redactError } from "../../src/observability/redact.js";
import { parseCommandLine } from "./arguments.js";
import { COMMANDS } from "./commands/index.js";
import { bashCompletion, zshCompletion } from "./completion.js";
import { commandHelp, rootUsage } from "./help.js";
import { diffrelayVersion } from "./version.js";

const USAGE = rootUsage(COMMANDS);

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "help" || name === "--help" || name === "-h") {
    const about = name === "help" ? rest[0] : undefined;
    if (about !== undefined) {
      const command = COMMANDS[about];
      if (!command) {
        console.error(`diffrelay help: unknown command ${JSON.stringify(about)}\n\n${USAGE}`);
        return EXIT.config;
      }
      console.log(commandHelp(about, command));
      return EXIT.ok;
    }
    console.log(USAGE);
    return name ? EXIT.ok : EXIT.config;
  }
  if (name === "--version" || name === "-V") {
    console.log(diffrelayVersion());
    return EXIT.ok;
  }
  if (name === "completion") {
    const shell = rest.length === 1 ? rest[0] : undefined;
    if (shell !== "bash" && shell !== "zsh") {
      console.error("usage: diffrelay completion bash|zsh");
      return EXIT.config;
    }
    process.stdout.write(shell === "bash" ? bashCompletion(COMMANDS) : zshCompletion(COMMANDS));
    return EXIT.ok;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`diffrelay: unknown command ${JSON.stringify(name)}\n\n${USAGE}`);
    return EXIT.config;
  }
  try {
    const line = parseCommandLine(name, command, rest, COMMANDS);
    if (line.help) {
      console.log(commandHelp(name, command));
      return EXIT.ok;
    }
    const flags = line.flags;
    const config = loadConfig({ flags, env: process.env });
    for (const path of command.required ?? []) requireSetting(settingValue(config, path), path);
    return await command.run({ config, flags });
  } catch (err) {
    const { kind, exitCode } = errorPolicy(err);
    // Configuration errors already name the setting and where it came from.
    console.error(kind === "configuration" ? redactError(err) : `diffrelay ${name}: ${redactError(err)}`);
    return exitCode;
  }
}

function settingValue(config: object, path: string): unknown {
  let node: unknown = config;
  for (const part of path.split(".")) {
    if (node === null || typeof node !== "object") return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}
