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
  /** The registry /metrics serves (a node's changes with its role). */
  registry: Pick<Registry, "contentType" | "metrics">;
  health: () => HealthReport;
  /** The same document `diffrelay status` shows for this process. */
  status: () => Promise<unknown> | unknown;
  /** More paths answering 200 or 503 with a JSON document, e.g. a node's /primary and /replica. */
  checks?: Record<string, (query: URLSearchParams) => HealthReport>;
}

/** /metrics (Prometheus), /healthz (200 while the stream flows, else 503), /status (JSON), and the extra checks. */
export async function startHealthServer(
  options: HealthServerOptions,
): Promise<{ server: Server; port: number }> {
  const server = createServer((req, res) => {
    const [path = "/", query = ""] = (req.url ?? "/").split("?");
    const check = options.checks?.[path];
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
      } else if (check) {
        const report = check(new URLSearchParams(query));
        res.writeHead(report.healthy ? 200 : 503, { "content-type": "application/json" });
        res.end(JSON.stringify(report, bigintAsString));
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
