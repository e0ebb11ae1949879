import net from "node:net";
import tls from "node:tls";
import type { ISocketFactory } from "kafkajs";

const KEEP_ALIVE_DELAY_MS = 60_000;

/**
 * kafkajs's own socket factory, with Nagle's algorithm off. kafkajs leaves it
 * on, so a small request written while an earlier one is unacknowledged (a
 * fetch behind a heartbeat, the next produce behind the last) waits for the
 * broker's delayed ACK: milliseconds of commit-to-standby latency per hop.
 */
export const noDelaySocketFactory: ISocketFactory = ({ host, port, ssl, onConnect }) => {
  const socket = ssl
    ? tls.connect({ host, port, ...(net.isIP(host) ? {} : { servername: host }), ...ssl }, onConnect)
    : net.connect({ host, port }, onConnect);
  socket.setNoDelay(true);
  socket.setKeepAlive(true, KEEP_ALIVE_DELAY_MS);
  return socket;
};
