import { z } from "zod";
import { DEFAULT_PIPELINE_LIMITS } from "@vp/contracts";
import { DEFAULT_DATABASE_URL, roleUrl } from "@vp/db";
import { natsCredentialsEnv, pathSetting, storageSetting } from "@vp/runtime";
import { DEFAULT_RETRY_SCHEDULE } from "./webhooks/settings";

const admin = () => process.env.DATABASE_ADMIN_URL ?? DEFAULT_DATABASE_URL;

export const Env = z.object({
  /** HTTP port of the API and SSE stream. */
  PORT: z.coerce.number().int().min(0).default(3061),
  /**
   * Address to listen on. Unset: 127.0.0.1 while the dev login is on or auth is off (nothing else on the network
   * can reach them), else 0.0.0.0. Set it (e.g. 0.0.0.0 in a pod) to listen elsewhere anyway.
   */
  HOST: z.string().min(1).optional(),
  /** Time a request other than an asset upload has to arrive whole (headers and body); past it: 408. */
  REQUEST_TIMEOUT_MS: z.coerce.number().int().positive().default(300_000),
  /**
   * An asset upload (up to MAX_UPLOAD_BYTES) may take as long as it keeps moving: it is cut with a 408 only when
   * no byte arrived for this long.
   */
  UPLOAD_IDLE_TIMEOUT_MS: z.coerce.number().int().positive().default(60_000),
  /** Postgres as vp_reader (every read). */
  DATABASE_URL: z.string().default(roleUrl(admin(), "vp_reader")),
  /** Postgres as vp_editor (structure writes: title, type, inputs, config, asset). */
  EDITOR_DATABASE_URL: z.string().default(roleUrl(admin(), "vp_editor")),
  NATS_URL: z.string().default("nats://127.0.0.1:4222"),
  ...natsCredentialsEnv,
  /** Prefix of every stream and subject; "" in production, random per test run. */
  BUS_NAMESPACE: z.string().default(""),
  /** Storage backend, local or s3 (main.ts builds it with createStorageFromEnv, which reads the S3_* settings). */
  STORAGE: storageSetting(),
  /** Root directory of the local-disk storage backend; made absolute at load. */
  STORAGE_ROOT: pathSetting(".data/storage"),
  /** Largest accepted asset upload in bytes (default 2 GiB). */
  MAX_UPLOAD_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(2 * 1024 ** 3),
  /**
   * Most bytes one pipeline may hold in storage (default 20 GiB): its uploads, its nodes' outputs and files kept for
   * the cache after a delete. An upload past it is a 413 naming the quota and the use.
   */
  STORAGE_QUOTA_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(20 * 1024 ** 3),
  /**
   * How output bytes reach clients: proxy (through the gateway, default) or presigned (STORAGE=s3 only: after the
   * role check, a 302 to a presigned GetObject URL valid for OUTPUT_URL_TTL_SECONDS, so bytes go from S3 to the
   * browser; the bucket needs a CORS rule for the editor's origin, and the editor's MEDIA_ORIGINS the bucket's).
   */
  OUTPUT_DELIVERY: z.enum(["proxy", "presigned"]).default("proxy"),
  OUTPUT_URL_TTL_SECONDS: z.coerce.number().int().min(10).max(3600).default(300),
  /**
   * How asset uploads reach storage: proxy (PUT .../asset through the gateway, default) or presigned (STORAGE=s3
   * only: the editor sends the file's parts straight to S3 with presigned UploadPart URLs valid for
   * UPLOAD_URL_TTL_SECONDS, and the gateway starts and completes the multipart upload; the bucket needs a CORS rule
   * allowing PUT from the editor's origin and exposing ETag, and the editor's MEDIA_ORIGINS the bucket's).
   */
  UPLOAD_DELIVERY: z.enum(["proxy", "presigned"]).default("proxy"),
  UPLOAD_URL_TTL_SECONDS: z.coerce.number().int().min(10).max(3600).default(900),
  /** How often the files of deleted pipelines and nodes left for later (kept for the cache, or a failed delete) are collected. */
  STORAGE_COLLECT_INTERVAL_MS: z.coerce
    .number()
    .int()
    .positive()
    .default(10 * 60_000),
  /** Most nodes in one pipeline: POST .../nodes and import beyond it are a 422. */
  MAX_PIPELINE_NODES: z.coerce.number().int().positive().default(DEFAULT_PIPELINE_LIMITS.maxNodes),
  /**
   * Most bytes of structure in one pipeline (its nodes' titles, inputs, config and assets as jsonb text): a
   * write beyond it is a 413. Every reader of the pipeline (SSE snapshot, GET, estimate) pays for this much.
   */
  MAX_PIPELINE_STRUCTURE_BYTES: z.coerce.number().int().positive().default(DEFAULT_PIPELINE_LIMITS.maxStructureBytes),
  /** How long an execute request waits for the scheduler's verdict before answering 202. */
  EXECUTE_VERDICT_TIMEOUT_MS: z.coerce.number().int().positive().default(10_000),
  /** Comma-separated origins allowed by CORS (the editor). */
  CORS_ORIGINS: z.string().default("http://localhost:3065"),
  LOG_LEVEL: z.string().default("info"),
  /** "jwt": every /v1 route needs a bearer JWT (the default); "off": no auth at all, announced loudly at start-up. */
  AUTH_MODE: z.enum(["jwt", "off"]).default("jwt"),
  /**
   * HS256 key (at least 32 bytes): verifies bearer tokens when AUTH_JWKS_URL is unset, and always signs the
   * gateway's short-lived stream tokens, so every replica must share it. Required unless AUTH_MODE=off.
   */
  AUTH_SECRET: z.string().optional(),
  /** Verify bearer tokens against this JWKS (RS256/ES256) of the identity provider instead of AUTH_SECRET. */
  AUTH_JWKS_URL: z.url().optional(),
  /** Expected `iss` of bearer tokens. */
  AUTH_ISSUER: z.string().min(1).default("vp-local"),
  /** Expected `aud` of bearer tokens. */
  AUTH_AUDIENCE: z.string().min(1).default("vp-api"),
  /** Comma-separated accepted algorithms; default HS256 with AUTH_SECRET, RS256,ES256 with AUTH_JWKS_URL. */
  AUTH_ALGORITHMS: z.string().optional(),
  /** Claim holding the roles (viewer, editor, operator); a dotted path reaches nested claims. */
  AUTH_ROLES_CLAIM: z.string().min(1).default("roles"),
  /** Tolerated clock skew on exp/nbf, seconds. */
  AUTH_CLOCK_TOLERANCE_SECONDS: z.coerce.number().int().min(0).max(300).default(5),
  /** How long a stream token may be used to open the event stream (the stream itself may stay open longer). */
  AUTH_STREAM_TOKEN_TTL_SECONDS: z.coerce.number().int().min(5).max(3600).default(60),
  /** POST /v1/video_production/auth/dev-login hands out all-roles tokens: local use only (npm start turns it on). */
  AUTH_DEV_LOGIN: z.stringbool().default(false),
  /**
   * The dev login answers a request only when its Host is localhost, 127.0.0.1 or [::1] and it comes from a
   * loopback address (so no web page can get a token through DNS rebinding), or when its Host (without port) is
   * in this comma-separated list, from anywhere: an explicit opt-in for a machine reached by name.
   */
  AUTH_DEV_LOGIN_HOSTS: z.string().default(""),
  /** Lifetime of a dev-login token, seconds. */
  AUTH_DEV_LOGIN_TTL_SECONDS: z.coerce
    .number()
    .int()
    .positive()
    .default(12 * 3600),
  /**
   * 32 bytes (64 hex characters or base64; openssl rand -base64 32) encrypting webhook signing secrets (AES-256-GCM),
   * the same on every replica. Unset: webhook endpoints cannot be created and nothing is delivered (npm start makes a
   * local one in .data/webhook-secret-key).
   */
  WEBHOOK_SECRET_KEY: z.string().optional(),
  /**
   * Comma-separated CIDR ranges a webhook URL may point at although they are internal (loopback, private, link-local,
   * ...; refused otherwise, at creation and again when sending), e.g. a receiver on 10.20.0.0/16. Default: none.
   */
  WEBHOOK_ALLOW_CIDRS: z.string().default(""),
  /** Waits before each retry of a failed webhook delivery (Standard Webhooks' schedule); past the last it fails. */
  WEBHOOK_RETRY_SCHEDULE: z.string().default(DEFAULT_RETRY_SCHEDULE),
  /** Time a webhook receiver has to answer; no answer counts as a failed attempt. */
  WEBHOOK_TIMEOUT_MS: z.coerce.number().int().positive().default(15_000),
  /** How often finished runs and failed nodes are looked for and due deliveries sent. */
  WEBHOOK_POLL_INTERVAL_MS: z.coerce.number().int().positive().default(1_000),
  /** Time from SIGTERM to exit (in-flight work finishes or is handed back within it); under the pod's terminationGracePeriodSeconds. */
  SHUTDOWN_GRACE_MS: z.coerce.number().int().min(0).default(25_000),
  /**
   * First part of SHUTDOWN_GRACE_MS: after SIGTERM `/ready` answers 503 and the gateway keeps serving this long
   * (answers close their connections) before it stops listening, so the load balancer has stopped sending
   * traffic here. At least Node's keep-alive timeout (5 s) lets idle keep-alive connections expire first.
   */
  SHUTDOWN_DRAIN_DELAY_MS: z.coerce.number().int().min(0).default(5_000),
});
export type Env = z.infer<typeof Env>;
export const loadEnv = (source: NodeJS.ProcessEnv = process.env): Env => Env.parse(source);
