// A node, capture or applier whose Kafka stops answering must still end when told to, and must end
// once it has given up: a process that lingers is one its supervisor never restarts. Real broker,
// reached through a proxy that stops forwarding (a network or a broker that no longer answers);
// the node's database is gone (nothing listens on its port).
import { afterEach, describe, expect, it } from "vitest";
import { freePort } from "../../scripts/stack/free-port.js";
import { EXIT } from "../../src/errors/exit-codes.js";
import { type DiffrelayProcess, spawnDiffrelay } from "../support/child-process.js";
import { exitWithin } from "../support/replication-pipeline.js";
import { testServices, uniqueName } from "../support/services.js";
import { TcpProxy } from "../support/tcp-proxy.js";

const HOUR_MS = 3_600_000;

describe("stopping a service whose Kafka does not answer", () => {
  const processes: DiffrelayProcess[] = [];
  const proxies: TcpProxy[] = [];

  afterEach(async () => {
    for (const p of processes.splice(0)) p.kill("SIGKILL");
    for (const proxy of proxies.splice(0)) await proxy.close();
  });

  async function unansweringNode(extra: string[]): Promise<DiffrelayProcess> {
    const [broker] = testServices().kafkaBrokers;
    const [host, port] = (broker as string).split(":");
    const proxy = await TcpProxy.start(host as string, Number(port));
    proxies.push(proxy);
    proxy.stall(HOUR_MS);
    const goneDatabase = `postgres://diffrelay@127.0.0.1:${await freePort()}/gone`;
    const node = spawnDiffrelay([
      "node",
      ...["--brokers", proxy.address, "--cluster", uniqueName("stopdeadline")],
      ...["--node-name", "n1", "--database-url", goneDatabase, "--metrics-port", String(await freePort())],
      ...extra,
    ]);
    processes.push(node);
    await node.waitForOutput(/serving metrics/, 20_000);
    // Its first request to the broker is out, and unanswered.
    await new Promise((resolve) => setTimeout(resolve, 1000));
    return node;
  }

  it("SIGTERM: the node exits by --stop-timeout-ms with exit 11, saying why and that positions are durable", async () => {
    const node = await unansweringNode(["--stop-timeout-ms", "2000"]);
    const signalledAt = Date.now();
    node.kill("SIGTERM");
    const exit = await exitWithin(node, 15_000);
    const took = Date.now() - signalledAt;
    expect(exit.code).toBe(EXIT.stopTimedOut);
    expect(took).toBeGreaterThanOrEqual(2000);
    expect(node.output()).toMatch(/did not stop within 2000 ms of SIGTERM/);
    expect(node.output()).toMatch(/positions are durable/);
  });

  it("a second signal ends it at once, with the same exit code", async () => {
    const node = await unansweringNode([]);
    node.kill("SIGTERM");
    await node.waitForOutput(/"stopping"/, 5000);
    const secondAt = Date.now();
    node.kill("SIGINT");
    const exit = await exitWithin(node, 10_000);
    expect(Date.now() - secondAt).toBeLessThan(8000);
    expect(exit.code).toBe(EXIT.stopTimedOut);
    expect(node.output()).toMatch(/second signal \(SIGINT\)/);
  });

  it("once it has given up on Kafka, the process ends, whatever sockets and timers the client leaves behind", async () => {
    const node = await unansweringNode([]);
    // kafkajs gives up on the unanswered bootstrap request after its request timeout and retries.
    const exit = await exitWithin(node, 90_000);
    expect(exit.code).not.toBe(EXIT.ok);
    expect(node.output()).toMatch(/diffrelay node: /);
  }, 120_000);
});
