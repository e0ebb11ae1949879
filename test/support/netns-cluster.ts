// The fault suite's world: a bridge, Kafka (1 or 3 brokers) on its own address on the host side, and three
// hosts a, b, c, each a network namespace holding a PostgreSQL server and its `diffrelay node`, bootstrapped
// as a role-change cluster (a primary, b and c seeded and following). destroy() removes all of it.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type KafkaClusterState,
  kafkaClusterBrokers,
  startKafkaCluster,
  stopKafkaCluster,
} from "../../scripts/stack/kafka-cluster.js";
import { type NetnsHost, NetnsNetwork } from "./netns-hosts.js";
import { startNetnsPostgres } from "./netns-postgres.js";
import { NODE_NAMES, RoleChangeCluster } from "./role-change-cluster.js";

export interface NetnsCluster {
  network: NetnsNetwork;
  kafka: KafkaClusterState;
  brokers: string[];
  rc: RoleChangeCluster;
  host(name: string): NetnsHost;
  destroy(): Promise<void>;
}

export async function startNetnsCluster(options: {
  label: string;
  zeroLoss: boolean;
  brokers: 1 | 3;
  ddl: string;
  tables: string[];
  nodeFlags?: string[];
  automaticFailover: boolean;
}): Promise<NetnsCluster> {
  const network = NetnsNetwork.create();
  const kafkaDir = mkdtempSync(join(tmpdir(), `diffrelay-${network.prefix}-kafka-`));
  let kafka: KafkaClusterState | undefined;
  const teardown = async () => {
    // The hosts first: their nodes would otherwise retry against a broker that is going away.
    await network.destroy();
    await stopKafkaCluster({ baseDir: kafkaDir, mode: "kill", purge: true }).catch(() => undefined);
    rmSync(kafkaDir, { recursive: true, force: true });
  };
  // The brokers are children of this worker, not of a namespace: stop them too if the worker exits early.
  const onExit = () => {
    for (const n of kafka?.nodes ?? []) if (n.pid) process.kill(n.pid, "SIGKILL");
  };
  process.once("exit", onExit);
  try {
    for (const name of NODE_NAMES) network.addHost(name);
    kafka = await startKafkaCluster({
      baseDir: kafkaDir,
      brokers: options.brokers,
      host: network.kafkaAddress,
      heapMb: options.brokers === 1 ? 512 : 384,
    });
    const brokers = kafkaClusterBrokers(kafka);
    const subnet = `${network.kafkaAddress.replace(/\.\d+$/, ".0")}/24`;
    const rc = await RoleChangeCluster.start({
      label: options.label,
      zeroLoss: options.zeroLoss,
      ddl: options.ddl,
      tables: options.tables,
      ...(options.nodeFlags ? { nodeFlags: options.nodeFlags } : {}),
      automaticFailover: options.automaticFailover,
      hosts: {
        brokers,
        server: (name, password) => startNetnsPostgres(network.host(name), subnet, password),
        place: (name) => ({ host: network.host(name).address, netns: network.host(name).netns }),
      },
    });
    const state = kafka;
    let destroyed = false;
    return {
      network,
      kafka: state,
      brokers,
      rc,
      host: (name) => network.host(name),
      destroy: async () => {
        if (destroyed) return;
        destroyed = true;
        process.removeListener("exit", onExit);
        await rc.destroy().catch(() => undefined);
        await teardown();
      },
    };
  } catch (err) {
    process.removeListener("exit", onExit);
    await teardown();
    throw err;
  }
}
