import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { metricsText } from "@vp/telemetry";

export interface HealthServer {
  port: number;
  close(): Promise<void>;
}

/**
 * GET /health: the process is up (liveness). GET /ready: `isReady()` (e.g. bus connected, consumers running),
 * 503 otherwise (readiness). GET /metrics: this process's Prometheus metrics (@vp/telemetry's registry).
 * For workers that have no HTTP server of their own. Port 0 picks a free port.
 */
export function startHealthServer(port: number, isReady: () => boolean | Promise<boolean>): Promise<HealthServer> {
  const server: Server = createServer(async (req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    if (req.method !== "GET" && req.method !== "HEAD") {
      res.writeHead(405).end();
      return;
    }
    if (path === "/health") {
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ ok: true }));
      return;
    }
    if (path === "/ready") {
      let ready = false;
      try {
        ready = await isReady();
      } catch {
        ready = false;
      }
      res.writeHead(ready ? 200 : 503, { "content-type": "application/json" }).end(JSON.stringify({ ready }));
      return;
    }
    if (path === "/metrics") {
      try {
        const { contentType, body } = await metricsText();
        res.writeHead(200, { "content-type": contentType }).end(body);
      } catch (err) {
        res.writeHead(500, { "content-type": "text/plain" }).end(String(err));
      }
      return;
    }
    res.writeHead(404).end();
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, () => {
      server.off("error", reject);
      resolve({
        port: (server.address() as AddressInfo).port,
        close: () => new Promise<void>((r) => server.close(() => r())),
      });
    });
  });
}
