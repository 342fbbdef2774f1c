/**
 * Auth at the gateway, through `app.request()` on the real Postgres and NATS, with
 * real jose tokens: bearer JWT checks (missing, expired, alg none, another key, wrong issuer or audience),
 * the role table (viewer / editor / operator), CORS for configured origins only, stream tokens for the SSE
 * route, a JWKS served by a local HTTP server, the dev login, AUTH_MODE=off, the output cookie, and a log
 * capture proving no token text reaches a log line.
 */
import { createServer, type Server } from "node:http";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { exportJWK, generateKeyPair, SignJWT, UnsecuredJWT, type CryptoKey, type JWK } from "jose";
import type pg from "pg";
import { ALL_ROLES, generateSecret, signAccessToken, STREAM_AUDIENCE, STREAM_ISSUER, STREAM_TOKEN_TYPE, type Role } from "@vp/auth";
import { createPool, roleUrl } from "@vp/db";
import { createLocalStorage } from "@vp/storage";
import { createLogger } from "@vp/telemetry";
import {
  createTestBus,
  createTestDatabase,
  insertNodeFixture,
  insertPipelineFixture,
  TEST_AUTH,
  testToken,
  type TestBus,
  type TestDatabase,
} from "@vp/testkit";
import { createApp } from "./app";
import { createGatewayAuth, OUTPUT_COOKIE, requiredAccess, type GatewayAuthOptions } from "./auth";

const EDITOR_ORIGIN = "http://localhost:3065";
const ROOT = "/v1/video_production";

let db: TestDatabase;
let bus: TestBus;
let reader: pg.Pool;
let editor: pg.Pool;
let scratch: string;

/** Every JSON line a logger wrote, raw (to search for token text) and parsed. */
function capture() {
  const raw: string[] = [];
  const destination = new Writable({
    write(chunk, _enc, cb) {
      raw.push(String(chunk));
      cb();
    },
  });
  return {
    raw,
    lines: () =>
      raw
        .join("")
        .split("\n")
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l) as Record<string, unknown>),
    destination,
  };
}

const baseOptions = (over: Partial<GatewayAuthOptions> = {}): GatewayAuthOptions => ({
  mode: "jwt",
  secret: TEST_AUTH.secret,
  issuer: TEST_AUTH.issuer,
  audience: TEST_AUTH.audience,
  devLogin: false,
  devLoginTtlSeconds: 3600,
  ...over,
});

function gateway(options: Partial<GatewayAuthOptions> = {}, sseKeepAliveSeconds?: number) {
  const logs = capture();
  const logger = createLogger({ service: "gateway-auth-test", level: "debug", destination: logs.destination });
  const auth = createGatewayAuth(baseOptions(options), logger);
  const app = createApp({
    reader,
    editor,
    bus: bus.bus,
    topology: bus.topology,
    storage: createLocalStorage({ root: join(scratch, "storage") }),
    logger,
    auth,
    maxUploadBytes: 64 * 1024,
    // No scheduler runs here: an accepted execute answers 202 after this wait.
    executeVerdictTimeoutMs: 200,
    corsOrigins: [EDITOR_ORIGIN],
    sseKeepAliveSeconds,
    closing: new Promise(() => {}),
  });
  const call = async (method: string, path: string, options: { token?: string | null; headers?: Record<string, string>; body?: unknown } = {}) => {
    const token = options.token === undefined ? await testToken() : options.token;
    const headers: Record<string, string> = { ...(token === null ? {} : { authorization: `Bearer ${token}` }), ...options.headers };
    if (options.body !== undefined) headers["content-type"] = "application/json";
    const res = await app.request(path.startsWith("/v1") ? path : `${ROOT}${path}`, {
      method,
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
    const text = res.headers.get("content-type")?.includes("text/event-stream") ? "" : await res.text();
    let body: any;
    try {
      body = text ? JSON.parse(text) : undefined;
    } catch {
      body = text;
    }
    return { status: res.status, body, headers: res.headers, res };
  };
  return { app, auth, logs, call };
}

const token = (roles: Role[], over: { secret?: string; issuer?: string; audience?: string; ttlSeconds?: number; now?: number } = {}) =>
  signAccessToken({
    secret: over.secret ?? TEST_AUTH.secret,
    issuer: over.issuer ?? TEST_AUTH.issuer,
    audience: over.audience ?? TEST_AUTH.audience,
    subject: "someone",
    roles,
    ttlSeconds: over.ttlSeconds ?? 600,
    now: over.now,
  });

/** A pipeline with one ready text asset node, "script". */
async function pipelineWithAsset() {
  const pipeline = await insertPipelineFixture(db.admin);
  await insertNodeFixture(db.admin, { pipelineId: pipeline.id, id: "script", type: "asset", asset: { type: "text", content: "Hello" } });
  return pipeline.id;
}

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "vp-gw-auth-"));
  db = await createTestDatabase();
  bus = await createTestBus();
  reader = createPool({ url: roleUrl(db.adminUrl, "vp_reader"), applicationName: "gw-auth-test-reader" });
  editor = createPool({ url: roleUrl(db.adminUrl, "vp_editor"), applicationName: "gw-auth-test-editor" });
});

afterAll(async () => {
  await reader?.end();
  await editor?.end();
  await bus?.cleanup();
  await db?.drop();
  await rm(scratch, { recursive: true, force: true });
});

describe("bearer tokens", () => {
  it("refuses a request without a token: 401, a reason and a WWW-Authenticate challenge", async () => {
    const { call } = gateway();
    const res = await call("GET", "/pipelines", { token: null });
    expect(res.status).toBe(401);
    expect(res.body.error).toMatch(/needs a bearer token: send Authorization: Bearer <token>/);
    expect(res.headers.get("www-authenticate")).toMatch(/^Bearer realm="vp", error="invalid_request", error_description="/);
    expect((await call("GET", "/pipelines", { token: null, headers: { authorization: "Basic dXNlcjpwYXNz" } })).body.error).toMatch(/must be "Bearer <token>"/);
  });

  it("refuses an expired token", async () => {
    const { call } = gateway();
    const expired = await token(["viewer"], { ttlSeconds: 60, now: Date.now() - 3600_000 });
    const res = await call("GET", "/pipelines", { token: expired });
    expect(res.status).toBe(401);
    expect(res.body.error).toMatch(/^The token expired at \d{4}-\d\d-\d\dT.*; get a new one$/);
    expect(res.headers.get("www-authenticate")).toMatch(/error="invalid_token"/);
  });

  it("refuses a token with alg: none", async () => {
    const { call } = gateway();
    const unsecured = new UnsecuredJWT({ roles: ALL_ROLES })
      .setIssuer(TEST_AUTH.issuer)
      .setAudience(TEST_AUTH.audience)
      .setSubject("mallory")
      .setIssuedAt()
      .setExpirationTime("10m")
      .encode();
    expect(unsecured.split(".")[2]).toBe("");
    const res = await call("POST", "/pipelines", { token: unsecured, body: { title: "x" } });
    expect(res.status).toBe(401);
    expect(res.body.error).toBe("The token's signing algorithm is not accepted (accepted: HS256)");
  });

  it("refuses a token signed with another key", async () => {
    const { call } = gateway();
    const forged = await token(ALL_ROLES, { secret: generateSecret() });
    const res = await call("GET", "/pipelines", { token: forged });
    expect(res.status).toBe(401);
    expect(res.body.error).toMatch(/signature does not verify with the gateway's key/);
  });

  it("refuses a token of another issuer or for another audience, naming the expected one", async () => {
    const { call } = gateway();
    const issuer = await call("GET", "/pipelines", { token: await token(["viewer"], { issuer: "https://evil.example" }) });
    expect(issuer.status).toBe(401);
    expect(issuer.body.error).toBe(`The token's "iss" claim is not accepted: check_failed (expected issuer "${TEST_AUTH.issuer}")`);
    const audience = await call("GET", "/pipelines", { token: await token(["viewer"], { audience: "another-api" }) });
    expect(audience.status).toBe(401);
    expect(audience.body.error).toBe(`The token's "aud" claim is not accepted: check_failed (expected audience "${TEST_AUTH.audience}")`);
  });

  it("refuses malformed tokens and tokens without exp", async () => {
    const { call } = gateway();
    expect((await call("GET", "/pipelines", { token: "not.a.jwt" })).status).toBe(401);
    const noExp = await new SignJWT({ roles: ["viewer"] })
      .setProtectedHeader({ alg: "HS256" })
      .setIssuer(TEST_AUTH.issuer)
      .setAudience(TEST_AUTH.audience)
      .setSubject("forever")
      .sign(new TextEncoder().encode(TEST_AUTH.secret));
    const res = await call("GET", "/pipelines", { token: noExp });
    expect(res.status).toBe(401);
    expect(res.body.error).toMatch(/"exp" claim/);
  });

  it("leaves /health, /ready and /metrics open", async () => {
    const { app } = gateway();
    for (const path of ["/health", "/ready", "/metrics"]) expect((await app.request(path)).status, path).toBe(200);
  });
});

describe("roles", () => {
  it("lets a viewer read but not execute: 403 naming the missing operator role", async () => {
    const { call } = gateway();
    const pipelineId = await pipelineWithAsset();
    const viewer = await token(["viewer"]);
    expect((await call("GET", `/pipelines/${pipelineId}`, { token: viewer })).status).toBe(200);
    expect((await call("GET", `/pipelines/${pipelineId}/runs`, { token: viewer })).status).toBe(200);
    const res = await call("POST", `/pipelines/${pipelineId}/nodes/script/execute`, { token: viewer });
    expect(res.status).toBe(403);
    expect(res.body).toEqual({
      error: `POST ${ROOT}/pipelines/${pipelineId}/nodes/script/execute needs the operator role; this token's roles: viewer`,
      missing_role: "operator",
    });
    expect((await call("POST", `/pipelines/${pipelineId}/execute`, { token: viewer })).status).toBe(403);
    expect((await call("POST", "/pipelines", { token: viewer, body: { title: "no" } })).body.missing_role).toBe("editor");
  });

  it("lets an editor change structure but not cancel, run or retry", async () => {
    const { call } = gateway();
    const pipelineId = await pipelineWithAsset();
    const editorToken = await token(["editor"]);
    expect((await call("POST", "/pipelines", { token: editorToken, body: { title: "by an editor" } })).status).toBe(201);
    expect((await call("PATCH", `/pipelines/${pipelineId}/nodes/script`, { token: editorToken, body: { title: "Renamed" } })).status).toBe(200);
    for (const path of [
      `/pipelines/${pipelineId}/cancel`,
      `/pipelines/${pipelineId}/nodes/script/cancel`,
      `/pipelines/${pipelineId}/nodes/script/retry`,
      `/pipelines/${pipelineId}/nodes/script/execute`,
    ]) {
      const res = await call("POST", path, { token: editorToken });
      expect(res.status, path).toBe(403);
      expect(res.body.error, path).toBe(`POST ${ROOT}${path} needs the operator role; this token's roles: editor, viewer`);
    }
  });

  it("lets an operator execute (the command is accepted), but not edit", async () => {
    const { call } = gateway();
    const pipelineId = await pipelineWithAsset();
    const operator = await token(["operator"]);
    const res = await call("POST", `/pipelines/${pipelineId}/nodes/script/execute`, { token: operator });
    // No scheduler in this test: the command is stored and the verdict is late (202), or it was queued (200).
    expect([200, 202], JSON.stringify(res.body)).toContain(res.status);
    expect((await call("DELETE", `/pipelines/${pipelineId}/nodes/script`, { token: operator })).body.missing_role).toBe("editor");
  });

  it("refuses a valid token that carries no role", async () => {
    const { call } = gateway();
    const res = await call("GET", "/pipelines", { token: await token([]) });
    expect(res.status).toBe(403);
    expect(res.body.error).toMatch(/needs the viewer role; this token's roles: none/);
  });

  it("covers every route of the app, and routes added later, by method and path; unknown methods are denied", () => {
    const { app } = gateway();
    const concrete = (path: string) => path.replace(/:[a-z_]+/g, "x");
    const seen = app.routes.filter((r) => r.path.startsWith("/v1/") && r.method !== "ALL");
    expect(seen.length).toBeGreaterThan(15);
    for (const { method, path } of seen) {
      const access = requiredAccess(method, concrete(path));
      const expected =
        path === `${ROOT}/auth/dev-login`
          ? { kind: "public" }
          : path.startsWith(`${ROOT}/api-keys`)
            ? { kind: "role", role: "operator" }
            : path.includes("/webhooks")
              ? { kind: "role", role: "editor" }
              : method === "GET" && path.endsWith("/events")
                ? { kind: "stream", pipelineId: path.startsWith(`${ROOT}/batches/`) ? "batch:x" : "x" }
                : method === "GET"
                  ? { kind: "role", role: "viewer" }
                  : path.endsWith("/events/token") || path === `${ROOT}/auth/session`
                    ? { kind: "role", role: "viewer" }
                    : /\/(execute|cancel|retry)$/.test(path) || path === `${ROOT}/pipelines/:pipeline_id/batches`
                      ? { kind: "role", role: "operator" }
                      : { kind: "role", role: "editor" };
      expect(access, `${method} ${path}`).toMatchObject(expected);
    }
    // Not yet written routes fall into the same rules.
    expect(requiredAccess("GET", `${ROOT}/pipelines/p/estimate`)).toMatchObject({ kind: "role", role: "viewer" });
    expect(requiredAccess("POST", `${ROOT}/pipelines/p/nodes/n/retry`)).toMatchObject({ kind: "role", role: "operator" });
    expect(requiredAccess("POST", `${ROOT}/pipelines/p/duplicate`)).toMatchObject({ kind: "role", role: "editor" });
    expect(requiredAccess("PROPFIND", `${ROOT}/pipelines`)).toMatchObject({ kind: "deny" });
    // A pipeline's webhooks are the editor's, reads included.
    expect(requiredAccess("GET", `${ROOT}/pipelines/p/webhooks/w/deliveries`)).toMatchObject({ kind: "role", role: "editor" });
    expect(requiredAccess("GET", `${ROOT}/pipelines/webhooks`)).toMatchObject({ kind: "role", role: "viewer" });
  });

  it("answers an unknown method with 403, not a pass", async () => {
    const { call } = gateway();
    const res = await call("PROPFIND", "/pipelines");
    expect(res.status).toBe(403);
    expect(res.body.error).toBe("PROPFIND is not an allowed method on the API");
  });
});

const corsHeaders = (headers: Headers) => {
  const names: string[] = [];
  headers.forEach((_value, name) => {
    if (name.startsWith("access-control-")) names.push(name);
  });
  return names;
};

describe("CORS", () => {
  it("gives an origin that is not configured no CORS headers at all, on requests and preflights", async () => {
    const { call } = gateway();
    const res = await call("GET", "/pipelines", { headers: { origin: "https://evil.example" } });
    expect(res.status).toBe(200);
    expect(corsHeaders(res.headers)).toEqual([]);
    const preflight = await call("OPTIONS", "/pipelines", {
      token: null,
      headers: { origin: "https://evil.example", "access-control-request-method": "POST", "access-control-request-headers": "authorization" },
    });
    expect(corsHeaders(preflight.headers)).toEqual([]);
  });

  it("answers the editor's origin, with credentials, also on a 401 so the editor can read the reason", async () => {
    const { call } = gateway();
    const preflight = await call("OPTIONS", "/pipelines", {
      token: null,
      headers: { origin: EDITOR_ORIGIN, "access-control-request-method": "POST", "access-control-request-headers": "authorization,content-type" },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get("access-control-allow-origin")).toBe(EDITOR_ORIGIN);
    expect(preflight.headers.get("access-control-allow-headers")).toBe("authorization,content-type");
    const ok = await call("GET", "/pipelines", { headers: { origin: EDITOR_ORIGIN } });
    expect(ok.headers.get("access-control-allow-origin")).toBe(EDITOR_ORIGIN);
    expect(ok.headers.get("access-control-allow-credentials")).toBe("true");
    const refused = await call("GET", "/pipelines", { token: null, headers: { origin: EDITOR_ORIGIN } });
    expect(refused.status).toBe(401);
    expect(refused.headers.get("access-control-allow-origin")).toBe(EDITOR_ORIGIN);
    expect(refused.headers.get("access-control-expose-headers")).toMatch(/www-authenticate/);
  });
});

describe("the event stream", () => {
  async function readUntilSnapshot(res: Response) {
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    while (!text.includes("event: snapshot")) text += decoder.decode((await reader.read()).value, { stream: true });
    await reader.cancel();
    return text;
  }

  it("opens with a stream token minted by a viewer, and refuses a missing, expired, foreign or bearer token", async () => {
    const { call } = gateway();
    const pipelineId = await pipelineWithAsset();
    const events = `/pipelines/${pipelineId}/events`;

    const missing = await call("GET", events);
    expect(missing.status).toBe(401);
    expect(missing.body.error).toMatch(/^The event stream needs a stream token: POST \.\.\.\/events\/token/);

    const minted = await call("POST", `${events}/token`, { token: await token(["viewer"]) });
    expect(minted.status).toBe(201);
    expect(Date.parse(minted.body.expires_at) - Date.now()).toBeLessThanOrEqual(60_000);
    const open = await call("GET", `${events}?token=${minted.body.token}`, { token: null });
    expect(open.status).toBe(200);
    expect(open.headers.get("content-type")).toMatch(/text\/event-stream/);
    expect(await readUntilSnapshot(open.res)).toContain('"script"');

    const now = Math.floor(Date.now() / 1000);
    const expired = await new SignJWT({ pid: pipelineId })
      .setProtectedHeader({ alg: "HS256", typ: STREAM_TOKEN_TYPE })
      .setIssuer(STREAM_ISSUER)
      .setAudience(STREAM_AUDIENCE)
      .setSubject("someone")
      .setIssuedAt(now - 600)
      .setExpirationTime(now - 540)
      .sign(new TextEncoder().encode(TEST_AUTH.secret));
    const late = await call("GET", `${events}?token=${expired}`, { token: null });
    expect(late.status).toBe(401);
    expect(late.body.error).toMatch(/^The stream token expired at /);

    // A bearer token is not a stream token (another audience and type), even with every role.
    const bearer = await call("GET", `${events}?token=${await testToken()}`, { token: null });
    expect(bearer.status).toBe(401);
    expect(bearer.body.error).toBe("This is not a stream token (a bearer token does not open the stream): mint one with POST .../events/token");

    // A stream token is not a bearer token either.
    expect((await call("GET", "/pipelines", { token: minted.body.token })).status).toBe(401);

    // Minted for another pipeline.
    const other = await pipelineWithAsset();
    const foreign = await call("GET", `/pipelines/${other}/events?token=${minted.body.token}`, { token: null });
    expect(foreign.status).toBe(401);
    expect(foreign.body.error).toBe("The stream token was minted for another pipeline");

    // Minting needs a bearer token.
    expect((await call("POST", `${events}/token`, { token: null })).status).toBe(401);
  });
});

describe("the event stream's lifetime", () => {
  it("stays open after its stream token expired; the same token cannot open it again", async () => {
    const { call } = gateway({ streamTokenTtlSeconds: 1, clockToleranceSeconds: 0 }, 1);
    const pipelineId = await pipelineWithAsset();
    const events = `/pipelines/${pipelineId}/events`;
    const { token: stream } = (await call("POST", `${events}/token`)).body;
    const open = await call("GET", `${events}?token=${stream}`, { token: null });
    expect(open.status).toBe(200);
    const reader = open.res.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    while (!text.includes("event: snapshot")) text += decoder.decode((await reader.read()).value, { stream: true });
    // Keep-alives (one a second) still arrive on the open stream well past the token's expiry (1 s).
    const keepAlives = () => text.split(": keep-alive").length - 1;
    while (keepAlives() < 3) text += decoder.decode((await reader.read()).value, { stream: true });
    const again = await call("GET", `${events}?token=${stream}`, { token: null });
    expect(again.status).toBe(401);
    expect(again.body.error).toMatch(/^The stream token expired/);
    await reader.cancel();
  });
});

describe("keys from a JWKS URL", () => {
  let server: Server;
  let jwksUrl: string;
  const keys: Record<string, { privateKey: CryptoKey; jwk: JWK }> = {};

  beforeAll(async () => {
    for (const [kid, alg] of [
      ["rsa-1", "RS256"],
      ["ec-1", "ES256"],
    ] as const) {
      const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
      keys[kid] = { privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" } };
    }
    server = createServer((req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ keys: Object.values(keys).map((k) => k.jwk) }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    jwksUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}/.well-known/jwks.json`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const idpToken = (kid: string, alg: "RS256" | "ES256", key: CryptoKey, roles: unknown = ["operator"]) =>
    new SignJWT({ realm_access: { roles } })
      .setProtectedHeader({ alg, kid, typ: "JWT" })
      .setIssuer("https://idp.example/realms/vp")
      .setAudience("vp-api")
      .setSubject("alice")
      .setIssuedAt()
      .setExpirationTime("5m")
      .sign(key);

  it("accepts RS256 and ES256 tokens of the identity provider, with roles from a nested claim", async () => {
    const { call } = gateway({ jwksUrl, issuer: "https://idp.example/realms/vp", audience: "vp-api", rolesClaim: "realm_access.roles" });
    const pipelineId = await pipelineWithAsset();
    for (const [kid, alg] of [
      ["rsa-1", "RS256"],
      ["ec-1", "ES256"],
    ] as const) {
      const t = await idpToken(kid, alg, keys[kid]!.privateKey);
      expect((await call("GET", `/pipelines/${pipelineId}`, { token: t })).status, alg).toBe(200);
      expect((await call("POST", "/pipelines", { token: t, body: { title: "x" } })).body.missing_role, alg).toBe("editor");
    }
  });

  it("refuses an HS256 token signed with the shared secret, and a key the JWKS does not hold", async () => {
    const { call } = gateway({ jwksUrl, issuer: TEST_AUTH.issuer, audience: TEST_AUTH.audience });
    const hs = await call("GET", "/pipelines", { token: await testToken() });
    expect(hs.status).toBe(401);
    expect(hs.body.error).toBe("The token's signing algorithm is not accepted (accepted: RS256, ES256)");
    const { privateKey } = await generateKeyPair("ES256");
    const stranger = await new SignJWT({ roles: ["viewer"] })
      .setProtectedHeader({ alg: "ES256", kid: "ec-1" })
      .setIssuer(TEST_AUTH.issuer)
      .setAudience(TEST_AUTH.audience)
      .setSubject("mallory")
      .setExpirationTime("5m")
      .sign(privateKey);
    const res = await call("GET", "/pipelines", { token: stranger });
    expect(res.status).toBe(401);
    expect(res.body.error).toMatch(/signature does not verify/);
  });

  it("answers 503 when the JWKS cannot be fetched, not a 401 that blames the token", async () => {
    const { call } = gateway({ jwksUrl: "http://127.0.0.1:9/jwks.json", issuer: "https://idp.example/realms/vp", audience: "vp-api" });
    const t = await idpToken("ec-1", "ES256", keys["ec-1"]!.privateKey);
    const res = await call("GET", "/pipelines", { token: t });
    expect(res.status).toBe(503);
    expect(res.body.error).toMatch(/signing keys are unavailable/);
  });
});

describe("configuration", () => {
  it("refuses to start without a secret, with a short one, or with alg none", () => {
    const logger = createLogger({ service: "t", level: "silent" });
    expect(() => createGatewayAuth(baseOptions({ secret: undefined }), logger)).toThrow(/AUTH_SECRET is not set/);
    expect(() => createGatewayAuth(baseOptions({ secret: "short" }), logger)).toThrow(/at least 32 bytes/);
    expect(() => createGatewayAuth(baseOptions({ algorithms: ["none"] }), logger)).toThrow(/must not contain "none"/);
    expect(() => createGatewayAuth(baseOptions({ jwksUrl: "http://127.0.0.1:9/j", algorithms: ["HS256"] }), logger)).toThrow(/asymmetric/);
  });

  it("announces AUTH_MODE=off loudly at start-up, and then lets requests through without a token", async () => {
    const { call, logs } = gateway({ mode: "off", secret: undefined });
    const warning = logs.lines().find((l) => l.level === 40 && String(l.msg).startsWith("AUTH IS OFF"));
    expect(warning).toMatchObject({ authMode: "off" });
    expect(String(warning!.msg)).toMatch(/every request is accepted without a token/);
    expect((await call("POST", "/pipelines", { token: null, body: { title: "open" } })).status).toBe(201);
  });
});

describe("the dev login and the output cookie", () => {
  it("is refused unless AUTH_DEV_LOGIN is on", async () => {
    const { call } = gateway();
    const res = await call("POST", "/auth/dev-login", { token: null });
    expect(res.status).toBe(403);
    expect(res.body.error).toMatch(/^The dev login is off/);
  });

  it("hands out a token the API accepts (all roles by default, or the roles asked for)", async () => {
    const { call } = gateway({ devLogin: true });
    const login = await call("POST", "/auth/dev-login", { token: null });
    expect(login.status).toBe(201);
    expect(login.body).toMatchObject({ token_type: "Bearer", roles: ALL_ROLES, subject: "dev" });
    expect((await call("POST", "/pipelines", { token: login.body.token, body: { title: "dev" } })).status).toBe(201);
    expect((await call("POST", "/auth/dev-login", { token: null, body: { roles: ["admin"] } })).status).toBe(422);
    const viewer = await call("POST", "/auth/dev-login", { token: null, body: { roles: ["viewer"] } });
    expect((await call("POST", "/pipelines", { token: viewer.body.token, body: { title: "no" } })).status).toBe(403);
  });

  it("answers the caller's subject and roles as the gateway reads the token (GET /auth/me), and needs a role", async () => {
    const { call } = gateway();
    const me = await call("GET", "/auth/me", { token: await token(["editor"]) });
    expect(me.status).toBe(200);
    expect(me.body).toEqual({ subject: "someone", roles: ["viewer", "editor"] });
    expect((await call("GET", "/auth/me", { token: null })).status).toBe(401);
    const none = await call("GET", "/auth/me", { token: await token([]) });
    expect(none.status).toBe(403);
    expect(none.body.error).toMatch(/needs the viewer role; this token's roles: none/);
  });

  it("sets an HttpOnly SameSite cookie that only opens node outputs and uploaded files, and only for reads", async () => {
    const { call } = gateway();
    const pipelineId = await pipelineWithAsset();
    const session = await call("POST", "/auth/session");
    expect(session.status).toBe(204);
    const cookie = session.headers.get("set-cookie")!;
    expect(cookie).toMatch(new RegExp(`^${OUTPUT_COOKIE}=[^;]+; Max-Age=\\d+; Path=/v1/video_production/pipelines; HttpOnly; SameSite=Strict$`));
    const pair = cookie.split(";")[0]!;
    // The node has no output yet: past auth, the route says 404.
    const output = await call("GET", `/pipelines/${pipelineId}/nodes/script/output`, { token: null, headers: { cookie: pair } });
    expect(output.status).toBe(404);
    // An asset's uploaded file too (the editor's thumbnail); this one has none: past auth, 404.
    expect((await call("GET", `/pipelines/${pipelineId}/nodes/script/asset`, { token: null, headers: { cookie: pair } })).status).toBe(404);
    expect((await call("GET", `/pipelines/${pipelineId}`, { token: null, headers: { cookie: pair } })).status).toBe(401);
    expect((await call("POST", "/pipelines", { token: null, headers: { cookie: pair }, body: { title: "csrf" } })).status).toBe(401);
  });
});

describe("logs", () => {
  it("never contain a token: bearer headers, stream tokens in the query, dev-login answers, refused tokens", async () => {
    const { call, logs } = gateway({ devLogin: true });
    const pipelineId = await pipelineWithAsset();
    const login = (await call("POST", "/auth/dev-login", { token: null })).body.token as string;
    const forged = await token(ALL_ROLES, { secret: generateSecret() });
    const expired = await token(["viewer"], { ttlSeconds: 1, now: Date.now() - 60_000 });
    await call("GET", "/pipelines", { token: login });
    await call("GET", "/pipelines", { token: forged });
    await call("GET", "/pipelines", { token: expired });
    await call("POST", "/pipelines", { token: await token(["viewer"]), body: { title: "x" } });
    const stream = (await call("POST", `/pipelines/${pipelineId}/events/token`, { token: login })).body.token as string;
    const open = await call("GET", `/pipelines/${pipelineId}/events?token=${stream}`, { token: null });
    await open.res.body?.cancel();
    await call("GET", `/pipelines/${pipelineId}/events?token=${forged}`, { token: null });
    await call("GET", `/pipelines/${pipelineId}/events?token=${login}`, { token: null });

    const text = logs.raw.join("");
    const requests = logs.lines().filter((l) => l.msg === "request");
    expect(requests.length).toBeGreaterThanOrEqual(8);
    expect(requests.some((l) => String(l.path).endsWith("/events"))).toBe(true);
    expect(requests.find((l) => l.path === `${ROOT}/pipelines` && l.status === 200)).toMatchObject({ sub: "dev" });
    for (const secret of [login, forged, expired, stream, TEST_AUTH.secret]) {
      expect(text.includes(secret)).toBe(false);
      // Nor any of its parts (a signature or payload alone would still be a leak).
      for (const part of secret.split(".")) if (part.length > 20) expect(text.includes(part)).toBe(false);
    }
    expect(text).not.toMatch(/token=/);
  });
});
