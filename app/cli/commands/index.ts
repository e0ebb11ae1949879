import type { Command } from "../command.js";
import { applyCommand } from "./apply.js";
import { captureCommand } from "./capture.js";
import { doctorCommand } from "./doctor.js";
import { failoverCommand } from "./failover.js";
import { listCommand } from "./list.js";
import { migrateCommand } from "./migrate.js";
import { nodeCommand } from "./node.js";
import { promoteCommand } from "./promote.js";
import { rejoinCommand } from "./rejoin.js";
import { seedCommand } from "./seed.js";
import { statusCommand } from "./status.js";
import { switchoverCommand } from "./switchover.js";
import { verifyCommand } from "./verify.js";

export const COMMANDS: Record<string, Command> = {
  capture: captureCommand,
  apply: applyCommand,
  migrate: migrateCommand,
  seed: seedCommand,
  verify: verifyCommand,
  status: statusCommand,
  promote: promoteCommand,
  failover: failoverCommand,
  rejoin: rejoinCommand,
  doctor: doctorCommand,
  node: nodeCommand,
  switchover: switchoverCommand,
  list: listCommand,
};
