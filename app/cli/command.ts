import type { DiffrelayConfig } from "../../src/config/config-schema.js";

export interface CommandContext {
  config: DiffrelayConfig;
  /** Raw flag values, for command-specific flags. */
  flags: Record<string, string | boolean | undefined>;
}

export interface Command {
  summary: string;
  /** Flags this command takes besides the settings. */
  flags?: Record<string, "string" | "boolean">;
  run(context: CommandContext): Promise<number>;
}
