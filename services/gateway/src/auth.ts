import { Hono, type MiddlewareHandler } from "hono";
import { getCookie, setCookie } from "hono/cookie";
import { z } from "zod";
import {
  ALL_ROLES,
  createTokenService,
  ForbiddenError,
  generateSecret,
  isApiKey,
  ROLES,
  signAccessToken,
  UnauthenticatedError,
  type AuthConfig,
  type Principal,
  type Role,
  type TokenService,
} from "@vp/auth";
import type { Logger } from "@vp/telemetry";
import type { ApiKeyVerifier } from "./api-keys";
import { HttpError } from "./errors";
import { pipelineLimitRefusal } from "./pipeline-access";
import { noBody } from "./validation";

declare module "hono" {
  interface ContextVariableMap {
    /** Who is calling (set by the auth middleware on every /v1 route it lets through). */
    principal: Principal;
  }
}

/** The cookie that lets a browser's <video>/<img>/<audio> (which cannot send headers) fetch node outputs. */
export const OUTPUT_COOKIE = "vp_output";
const COOKIE_PATH = "/v1/video_production/pipelines";

export interface GatewayAuth {
  /** "off" only when AUTH_MODE=off was set explicitly: every request is let through as all roles. */
  mode: "jwt" | "off";
  tokens: TokenService;
  /** The dev login (POST /v1/video_production/auth/dev-login): mints all-roles tokens with the secret. Local use only. */
  devLogin:
    | { enabled: false }
    | { enabled: true; issuer: string; audience: string; secret: string; ttlSeconds: number; rolesClaim?: string; allowedHosts: ReadonlySet<string> };
}

export interface GatewayAuthOptions extends Omit<AuthConfig, "secret"> {
  mode: "jwt" | "off";
  secret?: string;
  devLogin: boolean;
  devLoginTtlSeconds: number;
  /** Host names (AUTH_DEV_LOGIN_HOSTS) the dev login also answers, from any address. */
  devLoginHosts?: string[];
  /** The address the gateway listens on, for the start-up warning. */
  listenHost?: string;
}

const OFF_PRINCIPAL: Principal = { subject: "anonymous (AUTH_MODE=off)", roles: new Set(ALL_ROLES) };

/**
 * Builds the gateway's auth from its settings, failing at start-up when they cannot work. AUTH_MODE=off is
 * the only way to turn auth off, and it is announced loudly.
 */
export function createGatewayAuth(options: GatewayAuthOptions, logger: Logger): GatewayAuth {
  if (options.mode === "off") {
    const banner =
      "AUTH IS OFF (AUTH_MODE=off): every request is accepted without a token, as viewer, editor and operator. Never run this way where anyone else can reach the gateway.";
    logger.warn({ authMode: "off" }, banner);
    process.stderr.write(`\n${"!".repeat(100)}\n!! ${banner}\n${"!".repeat(100)}\n\n`);
    // Stream tokens are still minted (the editor asks for them) with a throwaway key; nothing checks them.
    const tokens = createTokenService({ ...options, secret: options.secret ?? generateSecret() });
    return { mode: "off", tokens, devLogin: options.devLogin ? devLoginOf(options, options.secret ?? generateSecret()) : { enabled: false } };
  }
  if (!options.secret) {
    throw new Error(
      "AUTH_SECRET is not set: the gateway needs it to verify HS256 tokens and to sign its stream tokens (set AUTH_SECRET to at least 32 random bytes, e.g. openssl rand -hex 32; add AUTH_JWKS_URL to take bearer tokens from an identity provider; AUTH_MODE=off turns auth off for local experiments)",
    );
  }
  if (options.devLogin && options.jwksUrl)
    throw new Error("AUTH_DEV_LOGIN cannot be on with AUTH_JWKS_URL: dev tokens are signed with AUTH_SECRET, which then verifies no bearer token");
  const tokens = createTokenService({ ...options, secret: options.secret });
  logger.info(
    {
      authMode: "jwt",
      keySource: tokens.keySource,
      algorithms: tokens.algorithms,
      issuer: options.issuer,
      audience: options.audience,
      devLogin: options.devLogin,
    },
    "auth: bearer JWT required on /v1",
  );
  if (options.devLogin) {
    logger.warn(
      { devLogin: true, listenHost: options.listenHost, devLoginHosts: options.devLoginHosts ?? [] },
      "auth: the dev login is on (POST /v1/video_production/auth/dev-login hands out all-roles tokens) for requests to localhost from this machine only",
    );
    if (options.listenHost && !isLoopbackAddress(options.listenHost)) {
      const banner = `THE DEV LOGIN IS ON (AUTH_DEV_LOGIN) and the gateway listens on ${options.listenHost}: it hands all-roles tokens to requests for Host localhost/127.0.0.1/[::1] from a loopback address (kubectl port-forward)${options.devLoginHosts?.length ? ` and to ANY request for Host ${options.devLoginHosts.join(", ")}` : ""}. Never run this way where others can reach the gateway.`;
      process.stderr.write(`\n${"!".repeat(100)}\n!! ${banner}\n${"!".repeat(100)}\n\n`);
    }
  }
  return { mode: "jwt", tokens, devLogin: options.devLogin ? devLoginOf(options, options.secret) : { enabled: false } };
}

function devLoginOf(options: GatewayAuthOptions, secret: string): GatewayAuth["devLogin"] {
  const allowedHosts = new Set((options.devLoginHosts ?? []).map((h) => h.toLowerCase()));
  return {
    enabled: true,
    issuer: options.issuer,
    audience: options.audience,
    secret,
    ttlSeconds: options.devLoginTtlSeconds,
    rolesClaim: options.rolesClaim,
    allowedHosts,
  };
}

const LOCAL_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** 127.0.0.0/8, ::1 and their IPv4-mapped form. */
export function isLoopbackAddress(address: string): boolean {
  const a = address.toLowerCase().replace(/^\[|\]$/g, "");
  return a === "::1" || a === "localhost" || /^(?:::ffff:)?127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(a);
}

/** The host name of a Host header value, lowercased, without its port (`[::1]` keeps its brackets). */
export function hostNameOf(host: string): string {
  const h = host.trim().toLowerCase();
  if (h.startsWith("[")) return h.slice(0, h.indexOf("]") + 1) || h;
  return h.split(":", 1)[0]!;
}

/**
 * Why the dev login refuses this request, or null. It answers a Host of localhost/127.0.0.1/[::1] from a loopback
 * address, or an allowed Host from anywhere: a web page that rebinds its own name to 127.0.0.1 (DNS rebinding)
 * sends its own name as Host and is refused. `peer` is undefined for in-process requests (app.request in tests).
 */
export function devLoginRefusal(host: string | undefined, peer: string | undefined, allowedHosts: ReadonlySet<string>): string | null {
  const name = host ? hostNameOf(host) : "";
  if (name && allowedHosts.has(name)) return null;
  if (LOCAL_HOSTS.has(name) && (peer === undefined || isLoopbackAddress(peer))) return null;
  const shown = JSON.stringify((host ?? "").slice(0, 100));
  return LOCAL_HOSTS.has(name)
    ? `The dev login answers only requests from this machine (this one came from ${peer}); use a token from your identity provider`
    : `The dev login answers only requests for localhost, 127.0.0.1 or [::1] (this one is for Host ${shown}); open the editor at http://localhost, or add the name to AUTH_DEV_LOGIN_HOSTS`;
}

export type Access =
  | { kind: "public" }
  | { kind: "stream"; pipelineId: string }
  | { kind: "role"; role: Role; cookie: boolean }
  | { kind: "deny"; reason: string };

const EVENTS = /^\/v1\/video_production\/pipelines\/([^/]+)\/events$/;
const EVENTS_TOKEN = /^\/v1\/video_production\/pipelines\/[^/]+\/events\/token$/;
/** A batch's row stream, opened with a stream token minted for `batch:<id>` (routes/batch-events.ts). */
const BATCH_EVENTS = /^\/v1\/video_production\/batches\/([^/]+)\/events$/;
const BATCH_EVENTS_TOKEN = /^\/v1\/video_production\/batches\/[^/]+\/events\/token$/;
/** What media elements load with the output cookie: a node's output, an asset's uploaded file. */
const OUTPUT = /^\/v1\/video_production\/pipelines\/[^/]+\/nodes\/[^/]+\/(?:output|asset)$/;
/** Operator actions: run, cancel, retry (a node, a pipeline, a batch or a batch's row) and starting a batch. */
const OPERATOR_ACTIONS = /\/(execute|cancel|retry)$|^\/v1\/video_production\/pipelines\/[^/]+\/batches$/;
const API_KEYS = "/v1/video_production/api-keys";
const WEBHOOKS = /^\/v1\/video_production\/pipelines\/[^/]+\/webhooks(?:\/|$)/;
const WRITES = new Set(["POST", "PUT", "PATCH", "DELETE"]);

const decode = (segment: string) => {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
};

/**
 * The route -> role table, by method and path so that a route added later is covered by default: reads need
 * viewer (a pipeline's webhooks: editor), POST .../execute|cancel|retry need operator, every other write needs
 * editor, and a method not listed is refused.
 */
export function requiredAccess(method: string, path: string): Access {
  if (!path.startsWith("/v1/")) return { kind: "public" };
  if (method === "POST" && path === "/v1/video_production/auth/dev-login") return { kind: "public" };
  // CORS preflights of allowed origins never get here (the CORS middleware answers them).
  if (method === "OPTIONS") return { kind: "public" };
  // API keys are handed out and revoked by operators, reads included (the list shows who holds which roles).
  if ((path === API_KEYS || path.startsWith(`${API_KEYS}/`)) && (method === "GET" || method === "HEAD" || WRITES.has(method))) {
    return { kind: "role", role: "operator", cookie: false };
  }
  // Webhooks are the editor's, reads included: their URLs and the receivers' answers may carry secrets.
  if (WEBHOOKS.test(path) && (method === "GET" || method === "HEAD")) return { kind: "role", role: "editor", cookie: false };
  if (method === "GET" || method === "HEAD") {
    const events = EVENTS.exec(path);
    if (events) return { kind: "stream", pipelineId: decode(events[1]!) };
    const batchEvents = BATCH_EVENTS.exec(path);
    if (batchEvents) return { kind: "stream", pipelineId: `batch:${decode(batchEvents[1]!)}` };
    return { kind: "role", role: "viewer", cookie: OUTPUT.test(path) };
  }
  if (method === "POST" && (EVENTS_TOKEN.test(path) || BATCH_EVENTS_TOKEN.test(path))) return { kind: "role", role: "viewer", cookie: false };
  if (method === "POST" && path === "/v1/video_production/auth/session") return { kind: "role", role: "viewer", cookie: false };
  if (method === "POST" && OPERATOR_ACTIONS.test(path)) return { kind: "role", role: "operator", cookie: false };
  if (WRITES.has(method)) return { kind: "role", role: "editor", cookie: false };
  return { kind: "deny", reason: `${method} is not an allowed method on the API` };
}

function bearerFrom(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  if (!match) throw new UnauthenticatedError('The Authorization header must be "Bearer <token>"', "invalid_request");
  return match[1];
}

const roleList = (principal: Principal) => (principal.roles.size ? [...principal.roles].join(", ") : "none");

/**
 * Checks every /v1 request against the role table; the reason of a refusal names what is missing. A bearer
 * credential is a JWT or an API key (`vpk_...`); both become the same Principal, and a key limited to some pipelines
 * is also held to them (pipelineLimitRefusal).
 */
export function authMiddleware(auth: GatewayAuth, apiKeys: ApiKeyVerifier): MiddlewareHandler {
  return async (c, next) => {
    const access = requiredAccess(c.req.method, c.req.path);
    if (access.kind === "public") return next();
    if (auth.mode === "off") {
      c.set("principal", OFF_PRINCIPAL);
      return next();
    }
    if (access.kind === "deny") throw new ForbiddenError(access.reason);
    if (access.kind === "stream") {
      const token = c.req.query("token");
      if (!token) {
        throw new UnauthenticatedError(
          "The event stream needs a stream token: POST .../events/token with your bearer token, then open .../events?token=<token> (EventSource cannot send an Authorization header)",
          "invalid_request",
        );
      }
      c.set("principal", await auth.tokens.verifyStreamToken(token, access.pipelineId));
      return next();
    }
    const token = bearerFrom(c.req.header("authorization")) ?? (access.cookie ? getCookie(c, OUTPUT_COOKIE) : undefined);
    if (!token) {
      const hint = auth.devLogin.enabled ? " (locally: POST /v1/video_production/auth/dev-login gives one)" : "";
      throw new UnauthenticatedError(`This API needs a bearer token: send Authorization: Bearer <token>${hint}`, "invalid_request");
    }
    const key = isApiKey(token);
    const principal = key ? await apiKeys.verify(token) : await auth.tokens.verifyBearer(token);
    if (!principal.roles.has(access.role)) {
      const what = key ? "API key" : "token";
      throw new ForbiddenError(`${c.req.method} ${c.req.path} needs the ${access.role} role; this ${what}'s roles: ${roleList(principal)}`, access.role);
    }
    const refusal = principal.pipelines ? pipelineLimitRefusal(c.req.method, c.req.path, principal.pipelines) : null;
    if (refusal) throw new ForbiddenError(refusal);
    c.set("principal", principal);
    return next();
  };
}

/** Sets the HttpOnly output cookie (read only on GET .../nodes/:id/output and .../asset) to the given bearer token. */
function setOutputCookie(c: Parameters<MiddlewareHandler>[0], token: string, maxAgeSeconds: number) {
  const secure = new URL(c.req.url).protocol === "https:" || c.req.header("x-forwarded-proto") === "https";
  setCookie(c, OUTPUT_COOKIE, token, { httpOnly: true, sameSite: "Strict", path: COOKIE_PATH, maxAge: Math.max(0, maxAgeSeconds), secure });
}

const DevLoginBody = z.strictObject({ roles: z.array(z.enum(ROLES)).min(1).optional(), subject: z.string().min(1).max(200).optional() });

/**
 * /v1/video_production/auth: POST /dev-login (local only: an all-roles token, when AUTH_DEV_LOGIN is on), POST /session
 * (sets the output cookie from the caller's bearer token, so media elements can load outputs) and GET /me (the caller as
 * the gateway reads its token: what the editor shows, and what it may offer).
 */
export function authRoutes(auth: GatewayAuth) {
  const app = new Hono();

  app.post("/dev-login", async (c) => {
    const dev = auth.devLogin;
    if (!dev.enabled)
      throw new ForbiddenError("The dev login is off: it is for local use (npm start sets AUTH_DEV_LOGIN=1); use a token from your identity provider");
    // The raw Host header where there is one (an absolute request target could name another host in the URL).
    const incoming = (c.env as { incoming?: { headers?: { host?: string }; socket?: { remoteAddress?: string } } } | undefined)?.incoming;
    const host = incoming ? incoming.headers?.host : new URL(c.req.url).host;
    const refusal = devLoginRefusal(host, incoming ? (incoming.socket?.remoteAddress ?? "an unknown address") : undefined, dev.allowedHosts);
    if (refusal) throw new ForbiddenError(refusal);
    const text = await c.req.text();
    let json: unknown = {};
    try {
      if (text) json = JSON.parse(text);
    } catch {
      throw new HttpError(400, "The dev login body must be JSON: { roles?: [...], subject? }");
    }
    const body = DevLoginBody.parse(json);
    const roles = body.roles ?? ALL_ROLES;
    const subject = body.subject ?? "dev";
    const token = await signAccessToken({
      secret: dev.secret,
      issuer: dev.issuer,
      audience: dev.audience,
      subject,
      roles,
      ttlSeconds: dev.ttlSeconds,
      rolesClaim: dev.rolesClaim,
    });
    const expiresAt = new Date(Date.now() + dev.ttlSeconds * 1000);
    return c.json({ token, token_type: "Bearer", expires_at: expiresAt.toISOString(), roles, subject }, 201);
  });

  app.get("/me", (c) => {
    const principal = c.get("principal");
    return c.json({ subject: principal.subject, roles: ROLES.filter((role) => principal.roles.has(role)) });
  });

  app.post("/session", async (c) => {
    const token = bearerFrom(c.req.header("authorization"));
    if (!token) throw new HttpError(400, "POST /v1/video_production/auth/session needs the bearer token in the Authorization header");
    await noBody(c);
    const exp = auth.mode === "jwt" ? decodeExp(token) : undefined;
    setOutputCookie(c, token, exp ? exp - Math.floor(Date.now() / 1000) : 3600);
    return c.body(null, 204);
  });

  return app;
}

/** exp of a token the middleware has already verified. */
function decodeExp(token: string): number | undefined {
  try {
    const payload = JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as { exp?: unknown };
    return typeof payload.exp === "number" ? payload.exp : undefined;
  } catch {
    return undefined;
  }
}
