/**
 * The node's role machine. `decideStep` is a pure function from this node's
 * role, the cluster view (read to its end) and what it observed (its
 * database, the reports' ages against `now`) to its next step; the node
 * (operations/node/cluster-node.ts) only follows the cluster topic and
 * carries steps out, talking to the capture and the applier through
 * `RoleService`.
 */
export {
  type DatabaseObservation,
  decideStep,
  type NodeRole,
  type RoleInputs,
  type RoleStep,
  STALLED_CHANGE_MS,
} from "./role-decision.js";
export { applierRole, captureRole, type RoleService } from "./role-service.js";
