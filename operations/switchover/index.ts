export { SwitchoverRefusedError, type SwitchoverReport, switchover } from "./switchover-runner.js";
