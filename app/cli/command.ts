import type { DiffrelayConfig } from "../../src/config/config-schema.js";

export interface CommandContext {
  config: DiffrelayConfig;
  /** Raw flag values, for command-specific flags. */
  flags: Record<string, string | boolean | undefined>;
}

/** A flag of one command that is not a setting (not in the YAML file or the environment). */
export interface CommandFlag {
  type: "string" | "boolean";
  /** One line for --help. */
  description: string;
  /** Shown in --help; the command reads it from here, so help cannot disagree with it. */
  default?: number | string;
  /** The value's name in --help, e.g. "n" for `--max-attempts <n>`. */
  value?: string;
}

export interface Command {
  summary: string;
  /**
   * Paths (src/config/settings.ts) of the settings this command reads. Its
   * --help lists exactly these, and a flag of any other setting is refused,
   * naming the commands that do read it. From the file or the environment,
   * other commands' settings are ignored: one file can serve every command.
   */
  settings: readonly string[];
  /** Settings it cannot run without: --help marks them, and they are checked before it runs. */
  required?: readonly string[];
  /** Flags this command takes besides the settings. */
  flags?: Record<string, CommandFlag>;
  run(context: CommandContext): Promise<number>;
}
