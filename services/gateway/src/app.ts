import { randomUUID } from "node:crypto";
import { Hono, type MiddlewareHandler } from "hono";
import { bodyLimit } from "hono/body-limit";
import { cors } from "hono/cors";
import { activeContext, extractTraceContext, logText, metricsText, SpanKind, traceIds, withSpan } from "@vp/telemetry";
import { apiKeyRoutes, createApiKeyVerifier } from "./api-keys";
import { authMiddleware, authRoutes } from "./auth";
import type { GatewayDeps } from "./deps";
import { createErrorHandler, HttpError } from "./errors";
import { hasDotSegment } from "./validation";
import { batchEventRoutes } from "./routes/batch-events";
import { batchRoutes, pipelineBatchRoutes } from "./routes/batches";
import { directUploadRoutes } from "./routes/direct-uploads";
import { documentRoutes } from "./routes/documents";
import { eventRoutes } from "./routes/events";
import { executeRoutes } from "./routes/execute";
import { fileRoutes } from "./routes/files";
import { nodeRoutes } from "./routes/nodes";
import { pipelineRoutes } from "./routes/pipelines";
import { revisionRoutes } from "./routes/revisions";
import { runRoutes } from "./routes/runs";
import { variableRoutes } from "./routes/variables";
import { webhookRoutes } from "./routes/webhooks";

const JSON_BODY_LIMIT = 1024 * 1024;

/** A caller's request id is kept (echoed and logged) when it is at most 128 characters of [A-Za-z0-9._:-]; else a new one. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;
export const requestIdOf = (header: string | undefined) => (header !== undefined && REQUEST_ID.test(header) ? header : randomUUID());

/**
 * An answer given before the whole body arrived (413, 401, ...) closes the connection: the server then drops the
 * rest of the body before closing (http-server.ts), so a client still sending reads the answer.
 */
const closeUnreadBodies: MiddlewareHandler = async (c, next) => {
  await next();
  const incoming = (c.env as { incoming?: { complete?: boolean } } | undefined)?.incoming;
  if (incoming && incoming.complete === false && c.req.method !== "GET" && c.req.method !== "HEAD") c.header("connection", "close");
};

/**
 * One server span per request, continuing the caller's traceparent if it sent one: everything the
 * request publishes carries it, so gateway -> scheduler -> executor -> state-writer is one trace.
 */
const traceRequests: MiddlewareHandler = (c, next) =>
  withSpan(
    `${c.req.method} ${c.req.routePath}`,
    {
      kind: SpanKind.SERVER,
      // Under the http instrumentation's server span when it is on (it already took the caller's traceparent).
      parent: traceIds().traceId ? activeContext() : extractTraceContext({ get: (key) => c.req.header(key), set: () => undefined }),
      attributes: { "http.request.method": c.req.method, "url.path": c.req.path },
    },
    async (span) => {
      await next();
      span.setAttribute("http.response.status_code", c.res.status);
    },
  );

/** Echoes (or gives) each request its id and logs one line per request but the probes. */
function logRequests(logger: GatewayDeps["logger"]): MiddlewareHandler {
  return async (c, next) => {
    const requestId = requestIdOf(c.req.header("x-request-id"));
    const started = performance.now();
    c.header("x-request-id", requestId);
    await next();
    // The path only: the query may hold a stream token, and headers are never logged. The subject comes from a
    // token (the dev login's is free text): escaped and capped, so it cannot forge a line in a terminal.
    if (c.req.path !== "/health" && c.req.path !== "/ready") {
      const subject = c.get("principal")?.subject;
      logger.info(
        {
          requestId,
          method: c.req.method,
          path: logText(c.req.path, 300),
          status: c.res.status,
          ms: Math.round(performance.now() - started),
          sub: subject === undefined ? undefined : logText(subject),
        },
        "request",
      );
    }
  };
}

/** The path as the client wrote it (Node's request target), before URL parsing resolved any dot segment. */
const refuseDotSegments: MiddlewareHandler = async (c, next) => {
  const raw = (c.env as { incoming?: { url?: unknown } } | undefined)?.incoming?.url;
  if (typeof raw === "string" && hasDotSegment(raw)) throw new HttpError(400, "The request path must not contain '.' or '..' segments");
  return next();
};

/**
 * Only the configured origins (the editor) get CORS headers; any other origin gets none at all, so its
 * pages cannot read answers. Credentials: the editor's output cookie (see auth.ts).
 */
function corsForEditor(corsOrigins: string[]): MiddlewareHandler {
  const allowCors = cors({
    origin: corsOrigins,
    credentials: true,
    allowMethods: ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    exposeHeaders: ["x-request-id", "www-authenticate"],
  });
  return (c, next) => {
    const origin = c.req.header("origin");
    return origin && corsOrigins.includes(origin) ? allowCors(c, next) : next();
  };
}

/** JSON bodies are small; only the asset upload route streams large bodies (with its own limit). */
const limitJsonBodies: MiddlewareHandler = async (c, next) => {
  if (c.req.method === "PUT" && c.req.path.endsWith("/asset")) return next();
  return bodyLimit({
    maxSize: JSON_BODY_LIMIT,
    onError: () => {
      throw new HttpError(413, `Request body exceeds ${JSON_BODY_LIMIT} bytes`);
    },
  })(c, next);
};

/** What runs around every route, in order: connection handling, tracing, request logs, path checks; under /v1 CORS, auth, body limits. */
function useMiddleware(app: Hono, deps: GatewayDeps) {
  app.use("*", closeUnreadBodies);
  app.use("*", traceRequests);
  app.use("*", logRequests(deps.logger));
  app.use("*", refuseDotSegments);
  app.use("/v1/*", corsForEditor(deps.corsOrigins));
  app.use("/v1/*", authMiddleware(deps.auth, createApiKeyVerifier({ db: deps.editor, logger: deps.logger })));
  app.use("/v1/*", limitJsonBodies);
}

/** The probes and metrics of the process, outside /v1 (no auth). */
function mountProbes(app: Hono, health: { ready(): Promise<boolean> }) {
  app.get("/health", (c) => c.json({ status: "ok" }));
  // Prometheus metrics of this process (@vp/telemetry's registry).
  app.get("/metrics", async (c) => {
    const { contentType, body } = await metricsText();
    return c.body(body, 200, { "content-type": contentType });
  });
  app.get("/ready", async (c) => ((await health.ready()) ? c.json({ status: "ready" }) : c.json({ status: "unavailable" }, 503)));
}

/** The API under /v1/video_production. */
function mountApi(app: Hono, deps: GatewayDeps) {
  app.route("/v1/video_production/auth", authRoutes(deps.auth));
  app.route("/v1/video_production/api-keys", apiKeyRoutes(deps));
  const base = "/v1/video_production/pipelines";
  app.route(base, pipelineRoutes(deps));
  app.route(base, eventRoutes(deps));
  app.route(base, documentRoutes(deps));
  app.route(base, revisionRoutes(deps));
  app.route(base, runRoutes(deps));
  app.route(base, variableRoutes(deps));
  app.route(base, webhookRoutes(deps));
  app.route(`${base}/:pipeline_id/nodes`, nodeRoutes(deps));
  app.route(`${base}/:pipeline_id/nodes`, executeRoutes(deps));
  app.route(`${base}/:pipeline_id/nodes`, fileRoutes(deps));
  app.route(`${base}/:pipeline_id/nodes`, directUploadRoutes(deps));
  app.route("/v1/video_production/batches", batchEventRoutes(deps));
  app.route(base, pipelineBatchRoutes(deps));
  app.route("/v1/video_production/batches", batchRoutes(deps));
}

export function createApp(deps: GatewayDeps, health: { ready(): Promise<boolean> } = { ready: async () => true }) {
  const app = new Hono();
  app.onError(createErrorHandler(deps.logger));
  app.notFound((c) => c.json({ error: `No route for ${c.req.method} ${c.req.path}` }, 404));
  useMiddleware(app, deps);
  mountProbes(app, health);
  mountApi(app, deps);
  return app;
}
