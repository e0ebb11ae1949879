import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";

export interface HealthReport {
  healthy: boolean;
  [detail: string]: unknown;
}

export interface HealthServerOptions {
  host: string;
  port: number;
  registry: Registry;
  health: () => HealthReport;
  /** The same document `diffrelay status` shows for this process. */
  status: () => Promise<unknown> | unknown;
}

/** /metrics (Prometheus), /healthz (200 while the stream flows, else 503), /status (JSON). */
export async function startHealthServer(
  options: HealthServerOptions,
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const reply = async () => {
      if (path === "/metrics") {
        res.writeHead(200, { "content-type": options.registry.contentType });
        res.end(await options.registry.metrics());
      } else if (path === "/healthz") {
        const report = options.health();
        res.writeHead(report.healthy ? 200 : 503, { "content-type": "application/json" });
        res.end(JSON.stringify(report, bigintAsString));
      } else if (path === "/status") {
        res.writeHead(200, { "content-type": "application/json" });
        res.end(JSON.stringify(await options.status(), bigintAsString));
      } else {
        res.writeHead(404).end();
      }
    };
    reply().catch((err) => {
      res.writeHead(500).end(String(err));
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => resolve());
  });
  server.unref();
  return { server, port: (server.address() as AddressInfo).port };
}

function bigintAsString(_key: string, value: unknown): unknown {
  return typeof value === "bigint" ? value.toString() : value;
}
