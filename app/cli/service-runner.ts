import type { Registry } from "prom-client";
import { EXIT, type ExitCode } from "../../src/errors/exit-codes.js";
import { type HealthServerOptions, startHealthServer } from "../../src/observability/health-server.js";
import type { Logger } from "../../src/observability/logger.js";

export interface RunnableService {
  run(): Promise<void>;
  stop(): Promise<void>;
  /** The document /status serves and `diffrelay status` shows. */
  status(): object;
  /** Whether changes are moving (or there are none to move): what /healthz reports. */
  isFlowing(): boolean;
}

export interface ServiceRunnerOptions {
  service: RunnableService;
  logger: Logger;
  metrics: { host: string; port: number; registry: Pick<Registry, "contentType" | "metrics"> };
  checks?: HealthServerOptions["checks"];
  /** After the first SIGTERM/SIGINT, how long run() may take to end before runService gives up on it. */
  stopTimeoutMs: number;
}

/**
 * Serves /metrics, /healthz and /status, runs the service, and stops it
 * cleanly on SIGINT/SIGTERM (work in flight finishes; positions stay durable).
 *
 * A stop waits on whatever the service is waiting for, and a Kafka or a
 * database that stopped answering can hold a client's request for minutes
 * (kafkajs: 30 s a request, and its retries). So the stop has a deadline, and
 * a second signal ends the wait at once: either returns EXIT.stopTimedOut
 * without waiting for run(), and the launcher exits. That is as safe as the
 * SIGKILL an orchestrator sends after its grace period: nothing moves a
 * position before what it covers is durable.
 */
export async function runService(options: ServiceRunnerOptions): Promise<ExitCode> {
  const { service, logger } = options;
  const http = await startHealthServer({
    host: options.metrics.host,
    port: options.metrics.port,
    registry: options.metrics.registry,
    health: () => ({ healthy: service.isFlowing(), ...service.status() }),
    status: () => service.status(),
    ...(options.checks ? { checks: options.checks } : {}),
  });
  logger.info(
    { url: `http://${options.metrics.host}:${http.port}/metrics` },
    "serving metrics, /healthz and /status",
  );
  const abandon = new StopDeadline(options.stopTimeoutMs, logger);
  const onSignal = (signal: NodeJS.Signals) => {
    if (abandon.signalled(signal)) return;
    logger.info({ signal }, "stopping");
    service.stop().catch((err) => logger.error({ err }, "stop failed"));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    return await Promise.race([service.run().then(() => EXIT.ok), abandon.reached]);
  } catch (err) {
    logger.error({ err }, "stopped by an error");
    // The CLI turns it into the exit code errorPolicy() gives its kind.
    throw err;
  } finally {
    abandon.cancel();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    http.server.close();
  }
}

const ABANDONED =
  "positions are durable (the slot's confirmed position and each standby's position move only past what Kafka or the standby holds), " +
  "so the next start resumes from them, as after a kill -9. Usually Kafka or the database stopped answering: check them";

/** Resolves `reached` with EXIT.stopTimedOut once a stop has taken too long, or at a second signal. */
class StopDeadline {
  readonly reached: Promise<ExitCode>;
  private resolve: (code: ExitCode) => void = () => undefined;
  private timer: NodeJS.Timeout | null = null;
  private firstSignal: NodeJS.Signals | null = null;

  constructor(
    private readonly timeoutMs: number,
    private readonly logger: Logger,
  ) {
    this.reached = new Promise((resolve) => {
      this.resolve = resolve;
    });
  }

  /** Notes a signal; true when it is not the first (the wait has then been abandoned). */
  signalled(signal: NodeJS.Signals): boolean {
    if (this.firstSignal === null) {
      this.firstSignal = signal;
      this.timer = setTimeout(() => {
        this.logger.error(
          { signal, stopTimeoutMs: this.timeoutMs },
          `did not stop within ${this.timeoutMs} ms of ${signal} (stopTimeoutMs): exiting without waiting further; ${ABANDONED}`,
        );
        this.resolve(EXIT.stopTimedOut);
      }, this.timeoutMs);
      return false;
    }
    this.logger.error(
      { signal },
      `second signal (${signal}) while stopping after ${this.firstSignal}: exiting without waiting further; ${ABANDONED}`,
    );
    this.resolve(EXIT.stopTimedOut);
    return true;
  }

  cancel(): void {
    if (this.timer) clearTimeout(this.timer);
  }
}
