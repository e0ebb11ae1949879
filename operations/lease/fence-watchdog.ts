import { type ChildProcess, spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import type { DiffrelayConfig } from "../../src/config/config-schema.js";
import type { Logger } from "../../src/observability/logger.js";

/**
 * The node's handle on its fence watchdog (watchdog-main.ts): armed with the
 * lease's remaining time after each extension, disarmed when the node fences
 * or hands over by itself. Its settings (the database URL with its password)
 * go through stdin, never the command line.
 */
export class FenceWatchdog {
  private readonly child: ChildProcess;
  private readonly answers: ((line: string) => void)[] = [];
  private exited = false;

  constructor(settings: { node: string; databaseUrl: string; config: DiffrelayConfig }, logger: Logger) {
    const main = fileURLToPath(new URL("./watchdog-main.js", import.meta.url));
    this.child = spawn(process.execPath, [main], { stdio: ["pipe", "pipe", "inherit"] });
    this.child.on("exit", (code, signal) => {
      this.exited = true;
      for (const answer of this.answers.splice(0)) answer("exited");
      if (code !== 0 || signal) logger.error({ code, signal }, "the fence watchdog ended");
    });
    this.child.stdin?.on("error", () => undefined);
    createInterface({ input: this.child.stdout as NodeJS.ReadableStream }).on("line", (line) =>
      this.answers.shift()?.(line),
    );
    this.child.stdin?.write(`${JSON.stringify(settings)}\n`);
  }

  /** Fence unless armed again within `validForMs`. */
  arm(validForMs: number): void {
    if (this.exited) return;
    this.answers.push(() => undefined);
    this.child.stdin?.write(`arm ${Math.max(0, Math.floor(validForMs))}\n`);
  }

  /** No fence from the watchdog: the node fences (or hands over) itself; resolves once it stands down, and it exits. */
  async disarm(): Promise<void> {
    if (this.exited) return;
    const answered = new Promise<string>((resolve) => this.answers.push(resolve));
    this.child.stdin?.write("disarm\n");
    await answered;
    this.child.stdin?.end();
  }
}
