import { DiffrelayError } from "../../src/errors/diffrelay-error.js";

/** The node's database cannot take the role the cluster gives it without an operator (exit 3). */
export class NodeRoleError extends DiffrelayError {
  override readonly name = "NodeRoleError";

  constructor(message: string) {
    super("setup", message);
  }
}
