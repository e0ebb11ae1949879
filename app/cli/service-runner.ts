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
}

/**
 * Serves /metrics, /healthz and /status, runs the service, and stops it
 * cleanly on SIGINT/SIGTERM (work in flight finishes; positions stay durable).
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
  const onSignal = (signal: NodeJS.Signals) => {
    logger.info({ signal }, "stopping");
    service.stop().catch((err) => logger.error({ err }, "stop failed"));
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    await service.run();
    return EXIT.ok;
  } catch (err) {
    logger.error({ err }, "stopped by an error");
    // The CLI turns it into the exit code errorPolicy() gives its kind.
    throw err;
  } finally {
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    http.server.close();
  }
}
