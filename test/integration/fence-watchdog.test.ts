// The fence watchdog process (operations/lease/watchdog-main.ts) on a real database: when its node dies while
// holding the lease, it must fence the database, also when the node died with arm lines still in flight, so
// that its "armed" answers meet a closed pipe (the failover suite's candidate killed right after it answered
// /primary: the watchdog died of EPIPE, and its database took writes beside the next primary's).
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config/config-loader.js";
import { createTestDatabase, runSql, type TestDatabase, testServices } from "../support/services.js";

const services = testServices();
const databases: TestDatabase[] = [];

afterAll(async () => {
  for (const db of databases) {
    await runSql(services.sourceUrl, `ALTER DATABASE "${db.name}" ALLOW_CONNECTIONS true`).catch(
      () => undefined,
    );
    await db.drop().catch(() => undefined);
  }
});

const WATCHDOG = fileURLToPath(new URL("../../dist/operations/lease/watchdog-main.js", import.meta.url));

async function allowsConnections(name: string): Promise<boolean> {
  const { rows } = await runSql<{ datallowconn: boolean }>(
    services.sourceUrl,
    "SELECT datallowconn FROM pg_database WHERE datname = $1",
    [name],
  );
  return rows[0]?.datallowconn === true;
}

describe("the fence watchdog", () => {
  it("fences its database when the node's end of stdin closes, also after its answers met a closed pipe", async () => {
    const db = await createTestDatabase(services.sourceUrl, "watchdog");
    databases.push(db);
    const config = loadConfig({ flags: { brokers: services.kafkaBrokers.join(",") }, env: {} });
    const child = spawn(process.execPath, [WATCHDOG], { stdio: ["pipe", "pipe", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (chunk: Buffer) => {
      stderr += chunk.toString();
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    // The node is gone: nobody reads the answers any more.
    child.stdout.destroy();
    child.stdin.write(`${JSON.stringify({ node: "a", databaseUrl: db.url, config })}\n`);
    for (let i = 0; i < 20; i++) child.stdin.write("arm 60000\n");
    child.stdin.end();
    const code = await Promise.race([
      exited,
      new Promise<"timeout">((resolve) => setTimeout(() => resolve("timeout"), 30_000)),
    ]);
    expect(code, stderr).toBe(0);
    expect(stderr).toMatch(/fenced the database: the node process ended while it held the lease/);
    expect(await allowsConnections(db.name)).toBe(false);
  });
});
