// Fault: connections cut mid-stream between the components and their servers, under load.
// - capture ↔ primary through a TCP proxy (both its replication and its catalog connection use the URL given):
//   every live connection reset, and forwarding stalled for a while;
// - each applier ↔ its standby through a TCP proxy: the same;
// - capture and appliers ↔ Kafka: a proxy in front of the bootstrap address only carries the first connection
//   (clients then connect to the broker's advertised port from metadata), so the broker connections are cut
//   where they are, with `ss -K` on the processes' sockets to the broker port; the bootstrap proxy is cut too.
// At the end both standbys equal the primary, nothing missing or doubled.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FaultScenario } from "../support/fault-scenario.js";
import { connectionsOf, killConnections } from "../support/fault-socket-kill.js";
import { testServices } from "../support/services.js";
import { TcpProxy } from "../support/tcp-proxy.js";

const REPEATS = 3;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const randomBetween = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo));

describe("fault: connections cut mid-stream under load", () => {
  let scenario: FaultScenario;
  const proxies: TcpProxy[] = [];
  let primary: TcpProxy;
  let standbys: TcpProxy[];
  let kafka: TcpProxy;

  beforeAll(async () => {
    const services = testServices();
    const p = await TcpProxy.forUrl(services.sourceUrl);
    const s1 = await TcpProxy.forUrl(services.standbyUrls[0] as string);
    const s2 = await TcpProxy.forUrl(services.standbyUrls[1] as string);
    const [host, port] = (services.kafkaBrokers[0] as string).split(":");
    kafka = await TcpProxy.start(host as string, Number(port));
    primary = p.proxy;
    standbys = [s1.proxy, s2.proxy];
    proxies.push(primary, ...standbys, kafka);
    scenario = await FaultScenario.start({
      prefix: "fault_cut",
      sourceServerUrl: p.url,
      standbyServerUrls: [s1.url, s2.url],
      brokers: [kafka.address],
    });
  });

  afterAll(async () => {
    try {
      await scenario?.close();
    } finally {
      await Promise.all(proxies.map((p) => p.close()));
    }
  });

  const pause = async () => {
    await scenario.load.waitForCommits(30);
    await sleep(randomBetween(100, 600));
  };

  it("recovers from cut and stalled connections to PostgreSQL and Kafka without losing or doubling anything", async () => {
    const { pipeline, tally } = scenario;
    const brokerPort = Number((testServices().kafkaBrokers[0] as string).split(":")[1]);
    const recovery: Record<string, number[]> = {};
    const recovered = async (kind: string) => {
      const ms = await scenario.recovered();
      recovery[kind] = [...(recovery[kind] ?? []), ms];
    };

    for (let i = 0; i < REPEATS; i++) {
      // capture ↔ primary: reset mid-stream.
      await pause();
      expect(primary.cutAll(), "live capture connections to the primary").toBeGreaterThanOrEqual(1);
      tally.add("cut capture↔primary");
      await recovered("cut capture↔primary");

      // appliers ↔ standbys: reset mid-stream.
      await pause();
      for (const s of standbys) expect(s.cutAll(), "live applier connections").toBeGreaterThanOrEqual(1);
      tally.add("cut applier↔standby", standbys.length);
      await recovered("cut applier↔standby");

      // components ↔ Kafka broker: every established connection of each process to the broker port.
      await pause();
      const pids = [
        pipeline.capture.pid,
        pipeline.standby("s1").applier.pid,
        pipeline.standby("s2").applier.pid,
      ];
      for (const pid of pids) {
        expect(connectionsOf(pid, brokerPort).length, `pid ${pid} has broker connections`).toBeGreaterThan(0);
        tally.add("cut component↔kafka (ss -K)", killConnections(pid, brokerPort) > 0 ? 1 : 0);
      }
      await recovered("cut component↔kafka");
    }

    for (let i = 0; i < 2; i++) {
      // Stalls: the network stops forwarding for a few seconds without closing anything.
      await pause();
      primary.stall(3_000);
      for (const s of standbys) s.stall(3_000);
      tally.add("stall 3 s capture↔primary + applier↔standby");
      await recovered("stall");
    }

    // The bootstrap proxy: only the clients' first (metadata) connections go through it.
    await pause();
    tally.add("cut kafka bootstrap proxy", kafka.cutAll() > 0 ? 1 : 0);
    await recovered("cut kafka bootstrap");

    tally.notes.push(
      JSON.stringify({
        recoveryMs: recovery,
        proxyConnections: {
          primary: primary.accepted,
          standbys: standbys.map((s) => s.accepted),
          kafkaBootstrap: kafka.accepted,
        },
        cutByProxy: { primary: primary.cut, standbys: standbys.map((s) => s.cut), kafkaBootstrap: kafka.cut },
      }),
    );
    await scenario.finish("connection-cuts");
    // Each cut forced new connections through the proxies: the components did reconnect.
    expect(primary.accepted).toBeGreaterThan(REPEATS);
    for (const s of standbys) expect(s.accepted).toBeGreaterThan(REPEATS);
    expect(tally.counts["cut component↔kafka (ss -K)"]).toBe(REPEATS * 3);
  }, 600_000);
});
