// Hosts as Linux network namespaces on one bridge, for the fault suite: each database server and its node
// run in a namespace of their own, so a fault can cut one host off from Kafka only (a blackhole route to
// Kafka's address inside its namespace) or from everyone (its veth's host end down), and "the machine died"
// means every process in its namespace killed with SIGKILL. Kafka listens on an address of its own on the
// bridge, the test process (the clients) reaches the hosts from the bridge's first address. Everything is
// named with one unique prefix and removed by destroy(), also when the worker exits without it.
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { processesMentioning } from "../../scripts/stack/processes.js";

const ip = (args: string[]): string =>
  execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

export interface NetnsHost {
  /** The host's name in the test (a, b, c). */
  name: string;
  /** Its network namespace. */
  netns: string;
  /** Its address on the bridge. */
  address: string;
  /** The pids of every process in its namespace now (database server, backends, node, watchdog). */
  pids(): number[];
  /** The machine dies: SIGKILL to every process of its namespace; resolves once all are gone. */
  killAll(): Promise<void>;
  /** Cuts (true) or restores (false) its route to Kafka's address; everything else still reaches it. */
  cutFromKafka(cut: boolean): void;
  /** Takes its link down (true: nobody reaches it, it reaches nobody) or up again. */
  isolate(isolated: boolean): void;
}

const live = new Set<NetnsNetwork>();
// A test that fails before its cleanup must not leave namespaces, links or processes behind.
process.once("exit", () => {
  for (const n of live) n.destroySync();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Whether the process runs (a zombie, killed but not yet reaped, does not). */
function alive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
  } catch {
    return false;
  }
}

/** A /24 in 10.201.0.0/16 that no route of this machine uses yet. */
function freeSubnet(): number {
  const routes = ip(["-4", "route", "show", "table", "all"]);
  for (let tries = 0; tries < 200; tries++) {
    const third = 1 + Math.floor(Math.random() * 254);
    if (!routes.includes(`10.201.${third}.`)) return third;
  }
  throw new Error("no free 10.201.x.0/24 subnet for the fault suite's bridge");
}

export class NetnsNetwork {
  readonly hosts = new Map<string, NetnsHost>();
  private destroyed = false;

  private constructor(
    /** Prefix of every namespace and link this network made (short: link names hold 15 characters). */
    readonly prefix: string,
    private readonly subnet: number,
  ) {}

  /** The bridge and its two host-side addresses: .1 for the test's clients, .2 for Kafka. */
  static create(): NetnsNetwork {
    sweepAbandoned();
    const prefix = `dj${randomBytes(3).toString("hex")}`;
    const net = new NetnsNetwork(prefix, freeSubnet());
    live.add(net);
    mkdirSync(OWNERS, { recursive: true });
    writeFileSync(join(OWNERS, prefix), String(process.pid));
    try {
      ip(["link", "add", net.bridge, "type", "bridge"]);
      ip(["addr", "add", `${net.address(1)}/24`, "dev", net.bridge]);
      ip(["addr", "add", `${net.kafkaAddress}/24`, "dev", net.bridge]);
      ip(["link", "set", net.bridge, "up"]);
      bridgeForwarding(net.bridge, "-I");
    } catch (err) {
      net.destroySync();
      throw err;
    }
    return net;
  }

  get bridge(): string {
    return `${this.prefix}br`;
  }

  /** The address Kafka's brokers listen on (host side, on the bridge). */
  get kafkaAddress(): string {
    return this.address(2);
  }

  private address(last: number): string {
    return `10.201.${this.subnet}.${last}`;
  }

  /** A namespace on the bridge with its own address (10 + its index), loopback up. */
  addHost(name: string): NetnsHost {
    if (this.destroyed) throw new Error("the network was destroyed");
    const index = this.hosts.size;
    const netns = `${this.prefix}-${name}`;
    const outside = `${this.prefix}${name}h`;
    const inside = `${this.prefix}${name}n`;
    const address = this.address(10 + index);
    ip(["netns", "add", netns]);
    ip(["link", "add", outside, "type", "veth", "peer", "name", inside]);
    ip(["link", "set", inside, "netns", netns]);
    ip(["link", "set", outside, "master", this.bridge, "up"]);
    ip(["-n", netns, "link", "set", "lo", "up"]);
    ip(["-n", netns, "link", "set", inside, "name", "eth0"]);
    ip(["-n", netns, "addr", "add", `${address}/24`, "dev", "eth0"]);
    ip(["-n", netns, "link", "set", "eth0", "up"]);
    const kafka = this.kafkaAddress;
    const pids = () =>
      ip(["netns", "pids", netns])
        .split("\n")
        .filter((l) => l.trim() !== "")
        .map(Number);
    const host: NetnsHost = {
      name,
      netns,
      address,
      pids,
      killAll: async () => {
        // Postgres forks backends while we kill: repeat until the namespace is empty.
        const deadline = Date.now() + 30_000;
        for (;;) {
          const left = pids().filter(alive);
          if (left.length === 0) return;
          if (Date.now() > deadline)
            throw new Error(`processes of host ${name} (${netns}) survived SIGKILL: ${left.join(", ")}`);
          for (const pid of left) {
            try {
              process.kill(pid, "SIGKILL");
            } catch {
              // Gone between the listing and the kill.
            }
          }
          await sleep(50);
        }
      },
      cutFromKafka: (cut) => {
        ip(["-n", netns, "route", cut ? "add" : "del", "blackhole", `${kafka}/32`]);
      },
      isolate: (isolated) => {
        ip(["link", "set", outside, isolated ? "down" : "up"]);
      },
    };
    this.hosts.set(name, host);
    return host;
  }

  host(name: string): NetnsHost {
    const h = this.hosts.get(name);
    if (!h) throw new Error(`no host ${name}`);
    return h;
  }

  /** Kills every process of every host, deletes the namespaces and the bridge. Safe to call twice. */
  destroySync(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    live.delete(this);
    removeNetwork(this.prefix);
  }

  async destroy(): Promise<void> {
    this.destroySync();
  }
}

/** Who made each network: a file per prefix holding the test process's pid. */
const OWNERS = "/tmp/diffrelay-netns-owners";

/**
 * Removes the networks of test processes that died without cleaning up (a worker killed by a signal runs no
 * exit handler): their namespaces' processes, the namespaces, the links, and the Kafka brokers started for
 * them (their command lines name the network's prefix).
 */
function sweepAbandoned(): void {
  if (!existsSync(OWNERS)) return;
  for (const prefix of readdirSync(OWNERS)) {
    const owner = Number(readFileSync(join(OWNERS, prefix), "utf8"));
    if (alive(owner)) continue;
    for (const { pid } of processesMentioning(`diffrelay-${prefix}-`)) {
      try {
        process.kill(pid, "SIGKILL");
      } catch {
        // Gone already.
      }
    }
    removeNetwork(prefix);
    // Its servers' and brokers' files.
    for (const dir of readdirSync(tmpdir()).filter((d) => d.startsWith(`diffrelay-${prefix}-`)))
      rmSync(join(tmpdir(), dir), { recursive: true, force: true });
  }
}

function removeNetwork(prefix: string): void {
  const namespaces = ip(["netns", "list"])
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => n.startsWith(`${prefix}-`));
  for (const ns of namespaces) {
    for (let round = 0; round < 20; round++) {
      const pids = ip(["netns", "pids", ns])
        .split("\n")
        .filter((l) => l.trim() !== "")
        .map(Number);
      if (pids.length === 0) break;
      for (const pid of pids) {
        try {
          process.kill(pid, "SIGKILL");
        } catch {
          // Already gone.
        }
      }
      execFileSync("sleep", ["0.1"]);
    }
    ip(["netns", "del", ns]);
  }
  const links = readFileSync("/proc/net/dev", "utf8")
    .split("\n")
    .map((l) => l.split(":")[0]?.trim() ?? "")
    .filter((l) => l.startsWith(prefix));
  for (const link of links) {
    try {
      ip(["link", "del", link]);
    } catch {
      // A veth's peer goes with it.
    }
  }
  bridgeForwarding(`${prefix}br`, "-D");
  rmSync(join(OWNERS, prefix), { force: true });
}

/**
 * Lets the hosts talk across the bridge whatever the host's FORWARD policy: a dockerd that ran on this
 * machine (the container step) leaves it at DROP with br_netfilter loaded, which drops bridged traffic.
 * Without iptables there is no such policy to get past; a rule already gone is fine on removal.
 */
function bridgeForwarding(bridge: string, action: "-I" | "-D"): void {
  try {
    execFileSync("iptables", [action, "FORWARD", "-i", bridge, "-o", bridge, "-j", "ACCEPT"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
  } catch (err) {
    if (action === "-I" && (err as { code?: string }).code !== "ENOENT") throw err;
  }
}
