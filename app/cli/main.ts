import { parseArgs } from "node:util";
import { ConfigError } from "../../src/config/config-error.js";
import { loadConfig } from "../../src/config/config-loader.js";
import { SETTINGS } from "../../src/config/settings.js";
import { errorPolicy } from "../../src/errors/error-policy.js";
import { EXIT } from "../../src/errors/exit-codes.js";
import { redactError } from "../../src/observability/redact.js";
import { COMMANDS } from "./commands/index.js";

const USAGE = `usage: diffrelay <command> [options]

commands:
${Object.entries(COMMANDS)
  .map(([name, command]) => `  ${name.padEnd(10)} ${command.summary}`)
  .join("\n")}

Every setting can come from --config FILE (YAML), an environment variable, or a flag;
flags win over the environment, which wins over the file. See docs/operations.md.`;

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "help" || name === "--help" || name === "-h") {
    console.log(USAGE);
    return name ? EXIT.ok : EXIT.config;
  }
  const command = COMMANDS[name];
  if (!command) {
    console.error(`diffrelay: unknown command ${JSON.stringify(name)}\n\n${USAGE}`);
    return EXIT.config;
  }
  try {
    const options: Record<string, { type: "string" | "boolean" }> = { config: { type: "string" } };
    for (const s of SETTINGS) options[s.flag] = { type: s.kind === "boolean" ? "boolean" : "string" };
    for (const [flag, type] of Object.entries(command.flags ?? {})) options[flag] = { type };
    let parsed: ReturnType<typeof parseArgs>;
    try {
      parsed = parseArgs({ args: rest, options, allowPositionals: false, strict: true });
    } catch (err) {
      throw new ConfigError(`diffrelay ${name}: ${(err as Error).message}`);
    }
    const flags = parsed.values as Record<string, string | boolean | undefined>;
    const config = loadConfig({ flags, env: process.env });
    return await command.run({ config, flags });
  } catch (err) {
    const { kind, exitCode } = errorPolicy(err);
    // Configuration errors already name the setting and where it came from.
    console.error(kind === "configuration" ? redactError(err) : `diffrelay ${name}: ${redactError(err)}`);
    return exitCode;
  }
}
