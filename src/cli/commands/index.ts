import type { Command } from "../command.js";
import { applyCommand } from "./apply.js";
import { captureCommand } from "./capture.js";
import { migrateCommand } from "./migrate.js";

export const COMMANDS: Record<string, Command> = {
  capture: captureCommand,
  apply: applyCommand,
  migrate: migrateCommand,
};
