import { Counter, collectDefaultMetrics, Gauge, Registry } from "prom-client";
import { ERROR_KINDS } from "../errors/diffrelay-error.js";

export interface ProcessMetricsOptions {
  /** `diffrelay_<process>_…` */
  process: "capture" | "apply";
  defaultLabels?: Record<string, string>;
  /** What "healthy" means for this process; the gauge reads the probe at every scrape, as /healthz does. */
  healthyHelp: string;
  errorsHelp: string;
}

/** What every diffrelay process exposes: its registry, process metrics, health and errors by the error policy's kind. */
export function createProcessMetrics(options: ProcessMetricsOptions) {
  const prefix = `diffrelay_${options.process}_`;
  const registry = new Registry();
  if (options.defaultLabels) registry.setDefaultLabels(options.defaultLabels);
  collectDefaultMetrics({ register: registry, prefix });
  const registers = [registry];
  let flowing: () => boolean = () => false;
  let stalled: () => boolean = () => false;
  const errors = new Counter({
    name: `${prefix}errors_total`,
    help: options.errorsHelp,
    labelNames: ["kind"],
    registers,
  });
  // Every kind's series exists from the start, at 0, so rate() and increase() see the first error.
  for (const kind of ERROR_KINDS) errors.inc({ kind }, 0);
  return {
    registry,
    registers,
    errors,
    /** The process's own view of whether changes flow; read at every scrape. */
    reportHealthFrom(probe: () => boolean): void {
      flowing = probe;
    },
    /** Where `diffrelay_stalled{process}` reads whether the process is stalled (its RepeatedFailureGuard). */
    reportStallFrom(probe: () => boolean): void {
      stalled = probe;
    },
    // One name for both processes, told apart by `process`, so one alert rule covers them.
    stalled: new Gauge({
      name: "diffrelay_stalled",
      help: "1 while the process keeps failing the same way at one position (see /status lastError and stalled), else 0",
      labelNames: ["process"],
      registers,
      collect() {
        this.set({ process: options.process }, stalled() ? 1 : 0);
      },
    }),
    healthy: new Gauge({
      name: `${prefix}healthy`,
      help: options.healthyHelp,
      registers,
      collect() {
        this.set(flowing() ? 1 : 0);
      },
    }),
  };
}
