// A TCP proxy the fault tests control: it sits between a component and one server port and can cut every
// live connection (both sides see a reset) or stall forwarding for a while (a network that stops answering).
import net from "node:net";

interface Pair {
  client: net.Socket;
  server: net.Socket;
}

export class TcpProxy {
  /** Connections accepted since start (each one is a fresh client connection through the proxy). */
  accepted = 0;
  /** Live connections destroyed by cutAll(). */
  cut = 0;
  private readonly pairs = new Set<Pair>();
  private stalledUntil = 0;
  private stallTimer: NodeJS.Timeout | null = null;

  private constructor(
    private readonly server: net.Server,
    readonly port: number,
    readonly targetHost: string,
    readonly targetPort: number,
  ) {}

  /** Listens on 127.0.0.1 on a free port and forwards every connection to target. */
  static async start(targetHost: string, targetPort: number): Promise<TcpProxy> {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, "127.0.0.1", () => resolve());
    });
    const address = server.address();
    if (address === null || typeof address === "string") throw new Error("proxy has no TCP address");
    const proxy = new TcpProxy(server, address.port, targetHost, targetPort);
    server.on("connection", (client) => proxy.accept(client));
    return proxy;
  }

  /** A proxy for the host:port of a URL (postgres://…), and the same URL pointing through it. */
  static async forUrl(url: string): Promise<{ proxy: TcpProxy; url: string }> {
    const u = new URL(url);
    const proxy = await TcpProxy.start(u.hostname, Number(u.port));
    u.hostname = "127.0.0.1";
    u.port = String(proxy.port);
    return { proxy, url: u.toString() };
  }

  get address(): string {
    return `127.0.0.1:${this.port}`;
  }

  /** Live connections right now. */
  get live(): number {
    return this.pairs.size;
  }

  private get stalled(): boolean {
    return Date.now() < this.stalledUntil;
  }

  private accept(client: net.Socket): void {
    this.accepted++;
    const server = net.connect({ host: this.targetHost, port: this.targetPort });
    const pair: Pair = { client, server };
    this.pairs.add(pair);
    const end = () => {
      if (!this.pairs.delete(pair)) return;
      client.destroy();
      server.destroy();
    };
    for (const s of [client, server]) {
      s.setNoDelay(true);
      s.on("error", end);
      s.on("close", end);
    }
    this.forward(client, server);
    this.forward(server, client);
    if (this.stalled) {
      client.pause();
      server.pause();
    }
  }

  private forward(from: net.Socket, to: net.Socket): void {
    from.on("data", (chunk) => {
      if (!to.write(chunk)) from.pause();
    });
    to.on("drain", () => {
      if (!this.stalled) from.resume();
    });
    from.on("end", () => to.end());
  }

  /** Destroys every live connection on both sides: client and server each see the connection die. */
  cutAll(): number {
    const n = this.pairs.size;
    for (const pair of [...this.pairs]) {
      this.pairs.delete(pair);
      pair.client.resetAndDestroy();
      pair.server.resetAndDestroy();
    }
    this.cut += n;
    return n;
  }

  /** Stops forwarding in both directions for `ms` (connections stay open, bytes wait), then resumes. */
  stall(ms: number): void {
    this.stalledUntil = Date.now() + ms;
    for (const { client, server } of this.pairs) {
      client.pause();
      server.pause();
    }
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = setTimeout(() => {
      this.stallTimer = null;
      this.stalledUntil = 0;
      for (const { client, server } of this.pairs) {
        client.resume();
        server.resume();
      }
    }, ms);
  }

  /** Stops listening and destroys every live connection. */
  async close(): Promise<void> {
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = null;
    this.stalledUntil = 0;
    this.cutAll();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
