import type { IncomingMessage, Server, ServerResponse } from "node:http";
import type { Socket } from "node:net";
import { serve, type ServerType } from "@hono/node-server";

/** Where the gateway listens: an explicit HOST wins; else loopback while the dev login is on or auth is off. */
export function listenHost(env: { HOST?: string; AUTH_DEV_LOGIN: boolean; AUTH_MODE: "jwt" | "off" }): string {
  if (env.HOST) return env.HOST;
  return env.AUTH_DEV_LOGIN || env.AUTH_MODE === "off" ? "127.0.0.1" : "0.0.0.0";
}

/** PUT .../pipelines/:pipeline_id/nodes/:id/asset: the one route whose body may take longer than a request timeout. */
const UPLOAD_ROUTE = /^\/v1\/video_production\/pipelines\/[^/?#]+\/nodes\/[^/?#]+\/asset(?:[?#]|$)/;
export const isAssetUpload = (method: string | undefined, url: string | undefined) => method === "PUT" && UPLOAD_ROUTE.test(url ?? "");

export interface HttpServerOptions {
  port: number;
  hostname: string;
  /** Time a request other than an asset upload has to arrive whole; the upload bounds itself (its idle timeout). */
  requestTimeoutMs: number;
  /** After answering a request whose body is still arriving: how much more of it is read and dropped, and for how long, before closing. */
  lingerBytes?: number;
  lingerMs?: number;
}

const REQUEST_TIMEOUT_BODY = JSON.stringify({ error: "The request did not arrive whole in time (request timeout); send it again" });
const REQUEST_TIMEOUT_RESPONSE = Buffer.from(
  `HTTP/1.1 408 Request Timeout\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(REQUEST_TIMEOUT_BODY)}\r\nConnection: close\r\n\r\n${REQUEST_TIMEOUT_BODY}`,
);

const kRequest = Symbol("vp.currentRequest");
const kLingering = Symbol("vp.lingering");
type TrackedSocket = Socket & { [kRequest]?: IncomingMessage; [kLingering]?: boolean };

/**
 * Serves `fetch` with the gateway's HTTP policies, which Node's defaults get wrong for it:
 * - Node's requestTimeout (300 s for the whole request) would cut a large upload on a slow line, so it is off
 *   and applied here to every request but the upload (which has its own idle timeout); headersTimeout stays.
 * - An answer given before the body arrived (413, 401, 408, ...) says `Connection: close` (app.ts); closing at
 *   once would reset the connection while the client still sends, and the client would lose the answer. So the
 *   socket is half-closed after the answer and the rest of the body is read and dropped, up to lingerBytes or
 *   lingerMs, before it is closed.
 */
export function startHttpServer(
  fetch: (request: Request, env: unknown) => Response | Promise<Response>,
  options: HttpServerOptions,
  onListening?: (info: { address: string; port: number }) => void,
): ServerType {
  const lingerBytes = options.lingerBytes ?? 64 * 1024 * 1024;
  const lingerMs = options.lingerMs ?? 10_000;
  const server = serve({ fetch, port: options.port, hostname: options.hostname, serverOptions: { requestTimeout: 0 } }, onListening);
  (server as Server).on("request", (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket as TrackedSocket;
    socket[kRequest] = req;
    if (!(kLingering in socket)) {
      socket[kLingering] = false;
      // Node ends a `Connection: close` answer with destroySoon(); while the body is still arriving, linger instead.
      const destroySoon = socket.destroySoon.bind(socket);
      socket.destroySoon = () => {
        const current = socket[kRequest];
        if (socket[kLingering]) return;
        if (!current || current.complete) return destroySoon();
        socket[kLingering] = true;
        linger(socket, current, lingerBytes, lingerMs);
      };
    }
    if (isAssetUpload(req.method, req.url)) return;
    const timer = setTimeout(() => {
      if (req.complete) return;
      if (!res.headersSent && socket.writable) socket.write(REQUEST_TIMEOUT_RESPONSE);
      socket.destroy();
    }, options.requestTimeoutMs);
    timer.unref();
    res.once("close", () => clearTimeout(timer));
  });
  return server;
}

/** Half-closes after the answer, drops what is left of the body, and closes once it ended or a bound is hit. */
function linger(socket: Socket, req: IncomingMessage, maxBytes: number, maxMs: number) {
  const startBytes = socket.bytesRead;
  const close = () => {
    clearTimeout(timer);
    clearInterval(poll);
    socket.destroy();
  };
  const timer = setTimeout(close, maxMs);
  const poll = setInterval(() => socket.bytesRead - startBytes > maxBytes && close(), 100);
  socket.once("close", () => {
    clearTimeout(timer);
    clearInterval(poll);
  });
  socket.end();
  // The answer is sent: nobody reads the body any more. Drop it, as Node's own dump does.
  req.once("end", close);
  req.removeAllListeners("data");
  req.resume();
}

export interface HttpDrain {
  /** True from `begin()` on: `/ready` answers 503 so the load balancer stops sending new connections here. */
  readonly draining: boolean;
  /** Starts draining: every answer from now on (and each in-flight one not yet sent) says `Connection: close`. */
  begin(): void;
  /** Stops accepting connections, closes idle keep-alive ones, and resolves once every connection has ended. */
  close(): Promise<void>;
}

/**
 * The HTTP side of a rolling restart. While draining, the gateway still serves whatever reaches it, but its
 * answers close their connections, so keep-alive clients open new ones (which the load balancer, having seen
 * `/ready` turn 503, sends to another replica). After the drain delay `close()` stops listening; connections
 * still answering finish, and each one is closed as soon as it is idle.
 */
export function createHttpDrain(server: ServerType): HttpDrain {
  const open = new Set<ServerResponse>();
  let draining = false;
  const closeAfter = (res: ServerResponse) => {
    if (!res.headersSent) res.setHeader("Connection", "close");
  };
  (server as Server).on("request", (_req: IncomingMessage, res: ServerResponse) => {
    if (draining) return closeAfter(res);
    open.add(res);
    res.once("close", () => open.delete(res));
  });
  return {
    get draining() {
      return draining;
    },
    begin() {
      draining = true;
      for (const res of open) closeAfter(res);
      open.clear();
    },
    close() {
      draining = true;
      return new Promise<void>((resolve) => {
        // A connection goes idle when its last answer ends (an SSE stream the shutdown just ended, say): close it then.
        const idle = setInterval(() => (server as Server).closeIdleConnections(), 100);
        (server as Server).close(() => {
          clearInterval(idle);
          resolve();
        });
        (server as Server).closeIdleConnections();
      });
    },
  };
}
