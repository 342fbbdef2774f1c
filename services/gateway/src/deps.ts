import { DEFAULT_PIPELINE_LIMITS, type PipelineLimits, type Topology } from "@vp/contracts";
import type { Bus } from "@vp/bus";
import type { Queryable } from "@vp/db";
import type { Storage } from "@vp/storage";
import type { Logger } from "@vp/telemetry";
import type { Cidr, Resolver } from "@vp/url-guard";
import type { GatewayAuth } from "./auth";

export interface GatewayDeps {
  /** Postgres as vp_reader: every read. */
  reader: Queryable;
  /** Postgres as vp_editor: structure writes only (title, type, inputs, config, asset). */
  editor: Queryable;
  bus: Bus;
  topology: Topology;
  storage: Storage;
  logger: Logger;
  /** How big one pipeline may grow (nodes, structure bytes), on every write path; default DEFAULT_PIPELINE_LIMITS. */
  limits?: PipelineLimits;
  /** Largest accepted asset upload, in bytes. */
  maxUploadBytes: number;
  /** An asset upload is cut with a 408 when no byte arrived for this long (default 60 s); it has no other deadline. */
  uploadIdleTimeoutMs?: number;
  /** Most bytes one pipeline may hold in storage (uploads, outputs, files kept for the cache); default 20 GiB. */
  storageQuotaBytes?: number;
  /** How long an execute request waits for the scheduler's verdict before answering 202. */
  executeVerdictTimeoutMs: number;
  /** Token checks, the role table's verdicts and the dev login (createGatewayAuth). */
  auth: GatewayAuth;
  /** Origins allowed by CORS (the editor); any other origin gets no CORS header at all. */
  corsOrigins: string[];
  /**
   * How output bytes reach a client: "proxy" streams them through the gateway; "presigned" answers an authorised
   * GET with a redirect to a short-lived presigned storage URL (S3), so the bytes flow from storage to the browser.
   */
  outputDelivery?: { mode: "proxy" } | { mode: "presigned"; expiresInSeconds: number };
  /**
   * How asset bytes reach storage: "proxy" through the gateway (PUT .../asset); "presigned" from the browser straight
   * to S3 as a multipart upload the gateway starts, presigns (URLs valid `urlTtlSeconds`) and completes. Default proxy.
   */
  uploadDelivery?: { mode: "proxy" } | { mode: "presigned"; urlTtlSeconds: number };
  /** Seconds between SSE keep-alive comments. */
  sseKeepAliveSeconds?: number;
  /** Webhook settings (WEBHOOK_*); absent, or without a key, endpoints cannot be created (503 naming the setting). */
  webhooks?: GatewayWebhooks;
  /** Resolves when the gateway shuts down: open SSE streams end so clients reconnect elsewhere. */
  closing: Promise<void>;
}

/** How big one pipeline may grow; enforced by the write itself (race-safe), see @vp/db's editor queries. */
export const limitsOf = (deps: Pick<GatewayDeps, "limits">) => deps.limits ?? DEFAULT_PIPELINE_LIMITS;

export interface GatewayWebhooks {
  /** WEBHOOK_SECRET_KEY: encrypts the endpoints' signing secrets. */
  key?: Buffer;
  /** Internal ranges a webhook URL may point at anyway (WEBHOOK_ALLOW_CIDRS). */
  allow: readonly Cidr[];
  /** Name resolution for the URL check (tests replace it). */
  resolver?: Resolver;
  /** Most endpoints per pipeline (default MAX_WEBHOOKS_PER_PIPELINE). */
  maxPerPipeline?: number;
}
