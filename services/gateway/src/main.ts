import { createTopology } from "@vp/contracts";
import { ensureTopology } from "@vp/bus";
import { createPool } from "@vp/db";
import { connectServiceBus, registerShutdown } from "@vp/runtime";
import { createStorageFromEnv } from "@vp/storage";
import { createLogger, initMetrics, startTracing } from "@vp/telemetry";
import { createApp } from "./app";
import { createGatewayAuth } from "./auth";
import { loadEnv } from "./env";
import { startFileCollector } from "./storage-files";
import { createHttpDrain, listenHost, startHttpServer } from "./http-server";
import { webhookSettings } from "./webhooks/settings";
import { startWebhookWorker } from "./webhooks/worker";
import { startBatchDriver } from "./batches/driver";

const env = loadEnv();
const logger = createLogger({ service: "gateway", level: env.LOG_LEVEL });
const tracing = startTracing({ serviceName: "gateway" });
initMetrics("gateway");
const auth = createGatewayAuth(
  {
    mode: env.AUTH_MODE,
    secret: env.AUTH_SECRET,
    jwksUrl: env.AUTH_JWKS_URL,
    issuer: env.AUTH_ISSUER,
    audience: env.AUTH_AUDIENCE,
    algorithms: env.AUTH_ALGORITHMS?.split(",")
      .map((s) => s.trim())
      .filter(Boolean),
    rolesClaim: env.AUTH_ROLES_CLAIM,
    clockToleranceSeconds: env.AUTH_CLOCK_TOLERANCE_SECONDS,
    streamTokenTtlSeconds: env.AUTH_STREAM_TOKEN_TTL_SECONDS,
    devLogin: env.AUTH_DEV_LOGIN,
    devLoginTtlSeconds: env.AUTH_DEV_LOGIN_TTL_SECONDS,
    devLoginHosts: env.AUTH_DEV_LOGIN_HOSTS.split(",")
      .map((s) => s.trim())
      .filter(Boolean),
    listenHost: listenHost(env),
  },
  logger,
);
const webhooks = webhookSettings(env);
const reader = createPool({ url: env.DATABASE_URL, applicationName: "gateway-reader" });
const editor = createPool({ url: env.EDITOR_DATABASE_URL, applicationName: "gateway-editor" });
const topology = createTopology({ namespace: env.BUS_NAMESPACE });
const bus = await connectServiceBus({ service: "gateway", env, topology, logger });
await ensureTopology(bus, topology, { consumers: [], streams: "expect" });
const storage = createStorageFromEnv({ ...process.env, STORAGE_ROOT: env.STORAGE_ROOT });
if (env.OUTPUT_DELIVERY === "presigned" && !storage.presignGet) {
  throw new Error("OUTPUT_DELIVERY=presigned needs STORAGE=s3: local storage has no presigned URLs");
}
if (env.UPLOAD_DELIVERY === "presigned" && !storage.clientUploads) {
  throw new Error("UPLOAD_DELIVERY=presigned needs STORAGE=s3: local storage takes uploads through the gateway only");
}

let close!: () => void;
const closing = new Promise<void>((resolve) => (close = resolve));
const app = createApp(
  {
    reader,
    editor,
    bus,
    topology,
    storage,
    logger,
    auth,
    maxUploadBytes: env.MAX_UPLOAD_BYTES,
    storageQuotaBytes: env.STORAGE_QUOTA_BYTES,
    outputDelivery: env.OUTPUT_DELIVERY === "presigned" ? { mode: "presigned", expiresInSeconds: env.OUTPUT_URL_TTL_SECONDS } : { mode: "proxy" },
    uploadDelivery: env.UPLOAD_DELIVERY === "presigned" ? { mode: "presigned", urlTtlSeconds: env.UPLOAD_URL_TTL_SECONDS } : { mode: "proxy" },
    uploadIdleTimeoutMs: env.UPLOAD_IDLE_TIMEOUT_MS,
    limits: { maxNodes: env.MAX_PIPELINE_NODES, maxStructureBytes: env.MAX_PIPELINE_STRUCTURE_BYTES },
    executeVerdictTimeoutMs: env.EXECUTE_VERDICT_TIMEOUT_MS,
    webhooks,
    corsOrigins: env.CORS_ORIGINS.split(",")
      .map((s) => s.trim())
      .filter(Boolean),
    closing,
  },
  {
    ready: async () => {
      if (drain.draining || bus.nc.isClosed()) return false;
      await reader.query("select 1");
      return true;
    },
  },
);

const collector = startFileCollector({ reader, editor, storage, logger }, env.STORAGE_COLLECT_INTERVAL_MS);
// Webhook deliveries (as the editor role, which owns the webhook tables and only reads runs and nodes).
const webhookWorker = webhooks.key
  ? startWebhookWorker({ db: editor, logger, ...webhooks, key: webhooks.key }, { pollIntervalMs: webhooks.pollIntervalMs })
  : undefined;
if (!webhookWorker) logger.info({ webhooks: "off" }, "webhook deliveries off: WEBHOOK_SECRET_KEY is not set");
// Batches: starts each batch's rows and records them as their runs end (one gateway drives at a time, under a lock).
const batchDriver = startBatchDriver({ reader, editor, bus, topology, logger, executeVerdictTimeoutMs: env.EXECUTE_VERDICT_TIMEOUT_MS });

const server = startHttpServer(app.fetch, { port: env.PORT, hostname: listenHost(env), requestTimeoutMs: env.REQUEST_TIMEOUT_MS }, (info) =>
  logger.info({ host: info.address, port: info.port }, "gateway listening"),
);
const drain = createHttpDrain(server);

registerShutdown(
  logger,
  [
    // Rolling restart: /ready turns 503 and the gateway keeps serving until the load balancer stopped routing here.
    [
      "drain",
      async () => {
        drain.begin();
        logger.info({ drainDelayMs: env.SHUTDOWN_DRAIN_DELAY_MS }, "draining: /ready answers 503, still serving");
        await new Promise((resolve) => setTimeout(resolve, env.SHUTDOWN_DRAIN_DELAY_MS));
      },
    ],
    // Stop listening, end SSE streams with a retry hint (clients resume with Last-Event-ID elsewhere), let
    // in-flight requests finish and close connections as they go idle.
    [
      "stop HTTP",
      () => {
        const closed = drain.close();
        close();
        return closed;
      },
    ],
    ["stop batch driver", () => batchDriver.stop()],
    ["drain NATS", () => bus.close()],
    ["stop file collection", () => collector.stop()],
    ["stop webhook deliveries", async () => webhookWorker?.stop()],
    ["close pools", () => Promise.all([reader.end(), editor.end()])],
    ["flush traces", () => tracing.shutdown()],
  ],
  { graceMs: env.SHUTDOWN_GRACE_MS },
);
