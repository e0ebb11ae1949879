// Stops and restarts the local stack's servers for fault tests, and puts everything back afterwards.
import {
  CLUSTER_NAMES,
  type KafkaStopMode,
  type PgStopMode,
  postgresUrl,
  startKafka,
  startPostgres,
  stopKafka,
  stopPostgres,
} from "../../scripts/stack/index.js";
import { runSql, type TestServices } from "./services.js";

export interface FaultStack {
  baseDir: string;
}

/** The local stack, or a clear failure: these faults stop and start servers, which only the stack allows. */
export function requireStack(services: TestServices): FaultStack {
  if (!services.stack) {
    throw new Error(
      `fault tests stop and restart servers through scripts/stack; the services come from ${services.origin}. ` +
        "Run them against the local stack (unset DIFFRELAY_TEST_* and run without a Docker engine).",
    );
  }
  return { baseDir: services.stack.baseDir };
}

/** A stopped-and-restarted PostgreSQL cluster; resolves once it answers a query again. */
export async function bouncePostgres(
  stack: FaultStack,
  name: string,
  mode: PgStopMode,
  downMs: number,
): Promise<{ restartMs: number }> {
  const t0 = Date.now();
  try {
    await stopPostgres(name, mode, stack);
    await new Promise((r) => setTimeout(r, downMs));
  } finally {
    await startPostgres(name, stack);
  }
  await waitForPostgres(stack, name);
  return { restartMs: Date.now() - t0 };
}

export async function waitForPostgres(stack: FaultStack, name: string, timeoutMs = 60_000): Promise<void> {
  const url = postgresUrl(name, stack);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      await runSql(url, "SELECT 1");
      return;
    } catch (err) {
      if (Date.now() > deadline) throw new Error(`PostgreSQL ${name} does not answer after restart: ${err}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** A stopped-and-restarted Kafka broker; startKafka resolves once the broker answers. */
export async function bounceKafka(
  stack: FaultStack,
  mode: KafkaStopMode,
  downMs: number,
): Promise<{ restartMs: number }> {
  const t0 = Date.now();
  try {
    await stopKafka(mode, stack);
    await new Promise((r) => setTimeout(r, downMs));
  } finally {
    await startKafka(stack);
  }
  return { restartMs: Date.now() - t0 };
}

/** Starts whatever is not running (a no-op for running servers): the safety net in afterAll. */
export async function restoreStack(stack: FaultStack): Promise<void> {
  const results = await Promise.allSettled([
    ...CLUSTER_NAMES.map(async (name) => {
      await startPostgres(name, stack);
      await waitForPostgres(stack, name);
    }),
    startKafka(stack),
  ]);
  const failed = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed.length)
    throw new Error(`could not restore the stack: ${failed.map((f) => String(f.reason)).join("\n")}`);
}
