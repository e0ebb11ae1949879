// Cuts a process's established TCP connections to one server port, mid-stream, with `ss -K` (SOCK_DESTROY:
// needs root and a kernel with INET_DIAG_DESTROY). Unlike a proxy in front of a bootstrap address, this also
// reaches the connections a Kafka client opened to brokers it learned from metadata.
import { execFileSync } from "node:child_process";

interface Connection {
  localPort: number;
  remotePort: number;
}

/** Established TCP connections of `pid` to 127.0.0.1:`remotePort`. */
export function connectionsOf(pid: number, remotePort: number): Connection[] {
  if (process.getuid?.() !== 0) {
    throw new Error("cutting another process's sockets with ss -K needs root (SOCK_DESTROY); run as root");
  }
  const out = execFileSync("ss", ["-tnpH", "state", "established", `dport = :${remotePort}`], {
    encoding: "utf8",
  });
  const found: Connection[] = [];
  for (const line of out.split("\n")) {
    if (!line.includes(`pid=${pid},`)) continue;
    // Recv-Q Send-Q Local:Port Peer:Port users:(...)
    const match = /\s(\S+):(\d+)\s+(\S+):(\d+)\s/.exec(line);
    if (match?.[2] && match[4]) found.push({ localPort: Number(match[2]), remotePort: Number(match[4]) });
  }
  return found;
}

/** Destroys every established connection of `pid` to `remotePort`; returns how many it cut. */
export function killConnections(pid: number, remotePort: number): number {
  const conns = connectionsOf(pid, remotePort);
  for (const c of conns) {
    execFileSync("ss", ["-K", "-tnH", `sport = :${c.localPort} and dport = :${c.remotePort}`], {
      encoding: "utf8",
    });
  }
  return conns.length;
}
