/**
 * Transaction-control commands whose outcome nothing waits on (the group's
 * BEGIN, the RELEASE of a batch's savepoint): they go out in front of the next
 * exchange on the standby connection instead of costing a round trip each.
 * One per connection, shared by the standby transaction and the applier.
 */
export class DeferredCommands {
  private commands: string[] = [];

  add(command: string): void {
    this.commands.push(command);
  }

  /** Nothing of the transaction has reached the standby yet: its BEGIN alone waits here. */
  get beginOnly(): boolean {
    return this.commands.length === 1 && this.commands[0] === "BEGIN";
  }

  /** The commands not sent yet, in order; the caller sends them first in its exchange. */
  take(): string[] {
    const taken = this.commands;
    this.commands = [];
    return taken;
  }

  /** `sql` preceded by the commands not sent yet, as one simple query. */
  prefix(sql: string): string {
    return [...this.take(), sql].join("; ");
  }
}
