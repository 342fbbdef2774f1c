/**
 * Fault scenario: a hostile input sweep over every HTTP route of the gateway.
 *
 * The routes come from the gateway's own Hono app (`app.routes`), so a route added later is swept without
 * touching this file (and a route missing from the field tables below fails the coverage check). Every route
 * gets, as far as it takes them:
 *   - forged and broken credentials (alg none, a wrong key, expired, not yet valid, wrong audience/issuer, an
 *     algorithm outside the list, a tampered payload, a jku/x5u pointing at our trap, a stream token as a
 *     bearer token, garbage, other schemes), and forged stream tokens on the event stream;
 *   - path traversal and broken encodings in every path parameter (raw `../`, `%2f`, `%252f`, `%00`,
 *     backslashes, absolute paths, overlong UTF-8, malformed percent-encoding, 300 characters);
 *   - malformed JSON, non-object JSON, a body over the limit (declared and chunked), deep nesting, prototype
 *     keys, unknown fields, every leaf with a wrong type, every object key and identifier-like string with
 *     a traversal string (free text is covered separately: it must stay text);
 *   - hostile query values where the route reads the query, and hostile Content-Types on the upload.
 * Each answer must be a 4xx with `{ error: "<reason>" }` (never a 500, never a 2xx), and the sweep must change
 * nothing: every table of the fault database (snapshotted, ordered), the storage tree, the bus's streams, and
 * no file named with this run's marker anywhere (nothing written outside the stack's scratch directory).
 *
 * URL assets (the SSRF targets: loopback, link-local/metadata, private, CGNAT, multicast, broadcast, a name
 * resolving to 127.0.0.1, decimal/hex/octal IPs, IPv4-mapped IPv6, redirects into loopback) are valid input to
 * the API: their node must fail with the reason, and a trap server on 127.0.0.1 must see no request.
 */
import { createHash, createHmac, generateKeyPairSync, randomUUID, sign as cryptoSign } from "node:crypto";
import { lookup } from "node:dns/promises";
import { readdir, readFile, stat } from "node:fs/promises";
import http, { type IncomingHttpHeaders } from "node:http";
import { connect, type Socket } from "node:net";
import { hostname, tmpdir } from "node:os";
import { join, relative } from "node:path";
import { Worker } from "node:worker_threads";
import { availableParallelism } from "node:os";
import pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeTestClip } from "@vp/media";
import { createLogger } from "@vp/telemetry";
import { REPO_ROOT, TEST_AUTH } from "@vp/testkit";
import { freePort as freeTestPort } from "@vp/testkit";
import { createApp } from "../../services/gateway/src/app";
import { requiredAccess } from "../../services/gateway/src/auth";
import type { GatewayDeps } from "../../services/gateway/src/deps";
import { freePort, startFaultInfra, type FaultInfra, type FaultStack } from "./harness";

const API = "/v1/video_production";
/** Every file or directory this run would create through a traversal is named with it. */
const MARK = `vp-hostile-${randomUUID().slice(0, 8)}`;
/** The gateway's JSON body limit (services/gateway/src/app.ts) and the upload limit this stack gets. */
const JSON_BODY_LIMIT = 1024 * 1024;
const MAX_UPLOAD_BYTES = 1024 * 1024;

let infra: FaultInfra;
let fx: FaultStack;
let port = 0;
let token = "";
let P = "";
let P2 = "";
let streamToken = "";
let clipBytes: Buffer;

// ---------------------------------------------------------------------------------------------------
// HTTP as bytes: node:http sends the path exactly as written (fetch would normalise `../` away).

interface Reply {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
  json: any;
}

function send(
  method: string,
  path: string,
  options: { headers?: Record<string, string>; body?: Buffer | string; chunked?: boolean; port?: number } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    let done = false;
    const headers: Record<string, string> = { ...options.headers };
    const body = options.body === undefined ? undefined : Buffer.isBuffer(options.body) ? options.body : Buffer.from(options.body);
    if (body && !options.chunked) headers["content-length"] = String(body.length);
    // Explicit: Node's client frames GET/DELETE bodies only when told to.
    if (body && options.chunked) headers["transfer-encoding"] = "chunked";
    const req = http.request({ host: "127.0.0.1", port: options.port ?? port, method, path, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        done = true;
        const text = Buffer.concat(chunks).toString("utf8");
        let json: any;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
      });
    });
    // The server may answer (413) before it read the whole body and close: the answer is what counts.
    req.on("error", (error) => {
      if (!done) setTimeout(() => !done && reject(error), 2000);
    });
    // An event stream that opened (or a route that hangs) is an answer that never ends: a failure, not a wait.
    req.setTimeout(30_000, () => req.destroy(new Error("no complete answer within 30 s")));
    if (body) {
      if (options.chunked) for (let i = 0; i < body.length; i += 64 * 1024) req.write(body.subarray(i, i + 64 * 1024));
      else req.write(body);
    }
    req.end();
  });
}

const bearer = (t = token) => ({ authorization: `Bearer ${t}` });
const json = (value: unknown) => JSON.stringify(value);

// ---------------------------------------------------------------------------------------------------
// State: every table, the storage tree, the bus streams, marker files.

async function snapshotDb(): Promise<Record<string, string[]>> {
  const client = new pg.Client({ connectionString: fx.adminUrl });
  await client.connect();
  try {
    const { rows: tables } = await client.query<{ name: string }>(
      "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) AS name FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1",
    );
    const out: Record<string, string[]> = {};
    for (const { name } of tables) {
      const { rows } = await client.query<{ j: string }>(`SELECT to_jsonb(t)::text AS j FROM ${name} t`);
      out[name] = rows.map((r) => r.j).sort();
    }
    return out;
  } finally {
    await client.end();
  }
}

/** Every file and directory under `root` with its size and content hash (files). */
async function tree(root: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) {
        out.push(`${relative(root, path)}/`);
        await walk(path);
      } else {
        const bytes = await readFile(path).catch(() => Buffer.alloc(0));
        out.push(`${relative(root, path)} ${bytes.length} ${createHash("sha256").update(bytes).digest("hex").slice(0, 16)}`);
      }
    }
  };
  await walk(root);
  return out.sort();
}

async function streamSeqs(): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const spec of fx.topology.allStreams()) out[spec.name] = (await fx.bus.jsm.streams.info(spec.name)).state.last_seq;
  return out;
}

/** Paths named with MARK under the places a traversal could reach (the scratch tree, tmp, the repo, /). */
async function markerFiles(): Promise<string[]> {
  const found: string[] = [];
  const walk = async (dir: string, depth: number) => {
    if (depth < 0) return;
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.name.includes(MARK)) found.push(path);
      if (entry.isDirectory() && !entry.isSymbolicLink() && entry.name !== "node_modules" && entry.name !== ".git") await walk(path, depth - 1);
    }
  };
  await walk(infra.dir, 12);
  await walk(tmpdir(), 1);
  await walk(REPO_ROOT, 3);
  await walk("/", 0);
  for (const p of [`/tmp/${MARK}`, `/etc/${MARK}`, `/${MARK}`]) if (await stat(p).catch(() => null)) found.push(p);
  return [...new Set(found)];
}

async function state() {
  return { db: await snapshotDb(), storage: await tree(join(fx.scratch, "storage")), streams: await streamSeqs() };
}

// ---------------------------------------------------------------------------------------------------
// Forged tokens

const b64 = (value: unknown) => Buffer.from(typeof value === "string" ? value : JSON.stringify(value)).toString("base64url");
const now = () => Math.floor(Date.now() / 1000);
const claims = (over: Record<string, unknown> = {}) => ({
  iss: TEST_AUTH.issuer,
  aud: TEST_AUTH.audience,
  sub: "mallory",
  roles: ["viewer", "editor", "operator"],
  iat: now(),
  exp: now() + 3600,
  ...over,
});
function hmacJwt(secret: string, payload: unknown, header: Record<string, unknown> = {}, alg: "HS256" | "HS384" | "HS512" = "HS256") {
  const signing = `${b64({ alg, typ: "JWT", ...header })}.${b64(payload)}`;
  return `${signing}.${createHmac(`sha${alg.slice(2)}`, secret)
    .update(signing)
    .digest("base64url")}`;
}
function rsaJwt(payload: unknown) {
  const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
  const signing = `${b64({ alg: "RS256", typ: "JWT" })}.${b64(payload)}`;
  return `${signing}.${cryptoSign("RSA-SHA256", Buffer.from(signing), privateKey).toString("base64url")}`;
}

/** Authorization headers that must all be refused with 401 (name -> headers). */
function forgedAuth(trapUrl: string): Array<[string, Record<string, string>]> {
  const wrong = "a-secret-that-is-not-the-gateways-at-all-0123456789";
  const valid = hmacJwt(TEST_AUTH.secret, claims());
  const [h, , s] = valid.split(".");
  const tampered = `${h}.${b64(claims({ sub: "someone-else", roles: ["operator"] }))}.${s}`;
  return [
    ["no Authorization header", {}],
    ["alg none", bearer(`${b64({ alg: "none", typ: "JWT" })}.${b64(claims())}.`)],
    ["alg None with a signature", bearer(`${b64({ alg: "None", typ: "JWT" })}.${b64(claims())}.${s}`)],
    ["a wrong key", bearer(hmacJwt(wrong, claims()))],
    ["expired", bearer(hmacJwt(TEST_AUTH.secret, claims({ iat: now() - 7200, exp: now() - 3600 })))],
    ["not yet valid", bearer(hmacJwt(TEST_AUTH.secret, claims({ nbf: now() + 3600 })))],
    ["a wrong audience", bearer(hmacJwt(TEST_AUTH.secret, claims({ aud: "someone-else" })))],
    ["a wrong issuer", bearer(hmacJwt(TEST_AUTH.secret, claims({ iss: "https://evil.example" })))],
    ["HS384 (not an accepted algorithm)", bearer(hmacJwt(TEST_AUTH.secret, claims(), {}, "HS384"))],
    ["RS256 with an unknown key", bearer(rsaJwt(claims()))],
    ["a tampered payload", bearer(tampered)],
    ["a kid with path traversal", bearer(hmacJwt(wrong, claims(), { kid: `../../../../tmp/${MARK}` }))],
    ["a jku / x5u pointing at the trap", bearer(hmacJwt(wrong, claims(), { jku: `${trapUrl}/jwks.json`, x5u: `${trapUrl}/cert.pem` }))],
    ["a stream token as a bearer token", bearer(streamToken)],
    ["a sub that is a number", bearer(hmacJwt(TEST_AUTH.secret, claims({ sub: 42 })))],
    ["a sub that is an object", bearer(hmacJwt(TEST_AUTH.secret, claims({ sub: { id: "mallory" } })))],
    ["garbage", bearer("garbage")],
    ["three empty parts", bearer("..")],
    ["base64 junk", bearer(`${b64("{{{")}.${b64("}}}")}.${b64("x")}`)],
    ["an 8 KB token", bearer(`${b64({ alg: "HS256" })}.${"A".repeat(8000)}.x`)],
    ["Bearer without a token", { authorization: "Bearer" }],
    ["Bearer with two tokens", { authorization: `Bearer ${valid} ${valid}` }],
    ["Basic credentials", { authorization: `Basic ${b64("admin:admin")}` }],
    ["a token in the cookie on a non-output route", { cookie: `vp_output=${valid}x` }],
  ];
}

// ---------------------------------------------------------------------------------------------------
// Inputs

/** Path parameter values (as they go on the wire); raw `../` is sent unnormalised. */
const PARAM_ATTACKS = [
  "..",
  "../../../../etc/passwd",
  `..%2f..%2f..%2f..%2ftmp%2f${MARK}`,
  "%2e%2e%2f%2e%2e%2fetc%2fpasswd",
  "..%252f..%252fetc%252fpasswd",
  "%2fetc%2fpasswd",
  "..%5c..%5cwindows%5cwin.ini",
  "C:%5cWindows%5csystem.ini",
  "%00",
  "clip%00.mp4",
  "%C0%AE%C0%AE%2f",
  "%ZZ",
  "%",
  "a".repeat(300),
  "x%20OR%201%3D1--",
  "%3Cscript%3E",
  "*",
  "a.b",
];

/** Strings that must never be an id, a slot, a key, a bucket, a prefix, an enum value or a URL. */
const TRAVERSAL = [
  "../../etc/passwd",
  `../../../../../../tmp/${MARK}`,
  "..%2f..%2fetc%2fpasswd",
  "..\\..\\windows\\win.ini",
  "/etc/passwd",
  `/tmp/${MARK}`,
  "C:\\Windows\\system.ini",
  "clip\u0000.mp4",
  "%00",
  "....//....//etc/passwd",
  "file:///etc/passwd",
  "",
];
/** What a title must refuse (the Title rule: no control characters, no `../`); other text is just text. */
const TITLE_ATTACKS = TRAVERSAL.filter((t) => /(^|[\\/])\.\.([\\/]|$)/.test(t) || /[\u0000-\u001f]/.test(t) || t === "");

const FREE_TEXT = new Set(["content", "subject", "script", "prompt"]);
const TITLES = new Set(["title"]);

const MALFORMED_JSON = ["{", '{"title": }', "not json", '{"a":1}}', "[1,2", "{'title':'x'}", "NaN", "\u0000", '{"title":"x",}', "\ufeff{}{}"];
const NON_OBJECT_JSON = ["[]", '"x"', "1", "null", "true", "[{}]"];
const DEEP = 50_000;
const UNKNOWN_FIELDS = [{ unknownField: 1 }, JSON.parse('{"__proto__": {"admin": true}}'), { constructor: { prototype: { admin: true } } }];

type Leaf = { path: Array<string | number>; value: unknown };
function leaves(value: unknown, path: Array<string | number> = []): Leaf[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => leaves(v, [...path, i])).concat(path.length ? [{ path, value }] : []);
  if (value && typeof value === "object")
    return Object.entries(value)
      .flatMap(([k, v]) => leaves(v, [...path, k]))
      .concat(path.length ? [{ path, value }] : []);
  return [{ path, value }];
}
function objectsIn(value: unknown, path: Array<string | number> = []): Array<{ path: Array<string | number>; keys: string[] }> {
  if (Array.isArray(value)) return value.flatMap((v, i) => objectsIn(v, [...path, i]));
  if (value && typeof value === "object") return [{ path, keys: Object.keys(value) }, ...Object.entries(value).flatMap(([k, v]) => objectsIn(v, [...path, k]))];
  return [];
}
function setAt(body: unknown, path: Array<string | number>, value: unknown): unknown {
  const copy = structuredClone(body) as any;
  let cursor = copy;
  for (const key of path.slice(0, -1)) cursor = cursor[key];
  cursor[path.at(-1)!] = value;
  return copy;
}
function renameKey(body: unknown, path: Array<string | number>, from: string, to: string): unknown {
  const copy = structuredClone(body) as any;
  let cursor = copy;
  for (const key of path) cursor = cursor[key];
  cursor[to] = cursor[from];
  delete cursor[from];
  return copy;
}
function wrongTypes(value: unknown): unknown[] {
  if (typeof value === "string") return [123, true, ["x"], { x: 1 }];
  if (typeof value === "number") return ["1", true, [1], { n: 1 }, "Infinity"];
  if (typeof value === "boolean") return ["true", 1, [true], { b: true }];
  if (Array.isArray(value)) return ["x", 1, { 0: value[0] }];
  if (value && typeof value === "object") return ["x", 1, [value]];
  return [];
}

interface BodySpec {
  /** A body the route would accept: each attack changes one thing in it. */
  valid: Record<string, unknown>;
  /** Path parameters for this spec (default: the fixture pipeline and node "clip"). */
  params?: Record<string, string>;
}

/**
 * Valid bodies per route that reads JSON. The attacks never send these as they are. Routes without an entry
 * take no body: for them every body is hostile (the generic attacks).
 */
const BODIES: Record<string, BodySpec[]> = {
  "POST /v1/video_production/pipelines": [
    { valid: { id: "new-pipeline", title: "t", config: { maxCost: 5, storage: { bucket: "my-bucket", prefix: "abc" } } } },
  ],
  "PATCH /v1/video_production/pipelines/:id": [{ valid: { title: "t2", config: { maxCost: 5, storage: { bucket: "my-bucket", prefix: "abc" } } } }],
  "POST /v1/video_production/pipelines/import": [
    {
      valid: {
        format: "video-pipelines/pipeline",
        version: 1,
        title: "imported",
        nodes: [
          {
            id: "a",
            title: "a",
            type: "asset",
            inputs: {},
            config: {},
            asset: { type: "video", url: "https://media.example.com/a.mp4" },
            position: { x: 1, y: 2 },
          },
          { id: "m", title: "m", type: "merge-videos", inputs: { segments: ["a"] }, config: { reencode: "auto" } },
          { id: "s", title: "s", type: "asset", asset: { type: "text", content: "a script" } },
          { id: "g", title: "g", type: "generate-animation", config: { provider: "local", prompt: "a cat" } },
        ],
      },
    },
  ],
  "POST /v1/video_production/pipelines/:pipeline_id/nodes": [
    {
      valid: {
        id: "n-new",
        title: "t",
        type: "merge-videos",
        inputs: { segments: ["clip"] },
        config: { reencode: "auto", width: 640 },
        position: { x: 1, y: 2 },
      },
    },
    { valid: { id: "a-new", title: "t", type: "asset", asset: { type: "video", url: "https://media.example.com/clip.mp4" } } },
    { valid: { id: "t-new", title: "t", type: "asset", asset: { type: "text", content: "hello" } } },
    { valid: { id: "v-new", title: "t", type: "generate-voiceover", config: { provider: "local", voiceId: "en-us", script: "hello", speed: 1 } } },
  ],
  "PATCH /v1/video_production/pipelines/:pipeline_id/nodes/:id": [
    { valid: { title: "t", asset: { type: "video", url: "https://media.example.com/x.mp4" }, position: { x: 1, y: 1 } }, params: { id: "pending" } },
    { valid: { inputs: { segments: ["clip"] }, config: { reencode: "always", width: 640 } }, params: { id: "merge" } },
  ],
  "POST /v1/video_production/pipelines/:pipeline_id/execute": [{ valid: { force: true } }],
  "POST /v1/video_production/pipelines/:pipeline_id/nodes/:id/execute": [{ valid: { upstream: true, force: true }, params: { id: "merge" } }],
  "POST /v1/video_production/pipelines/:pipeline_id/nodes/:id/retry": [{ valid: { downstream: true, force: true }, params: { id: "merge" } }],
  "POST /v1/video_production/auth/dev-login": [{ valid: { roles: ["viewer"], subject: "x" } }],
};

/** Hostile query strings per GET route that reads its query. */
const QUERIES: Record<string, string[]> = {
  "GET /v1/video_production/pipelines": [
    "page=abc",
    "page=0",
    "page=-1",
    "page=1.5",
    "page=1e999",
    "page=99999999999",
    "per=abc",
    "per=0",
    "per=1000",
    "page=..%2f..%2fetc%2fpasswd",
    `per=${"9".repeat(4000)}`,
  ],
  "GET /v1/video_production/pipelines/:pipeline_id/runs": ["limit=abc", "limit=0", "limit=-5", "limit=100000", "limit=1.5", "limit=..%2f..%2fetc%2fpasswd"],
  "GET /v1/video_production/pipelines/:pipeline_id/estimate": ["force=abc", "force=1", "force=yes", "force=TRUE", "force=..%2f..%2fetc%2fpasswd"],
};

/** The node a route's `:id` names by default (one that gets the request past "not found"). */
const NODE_FOR: Record<string, string> = {
  "PUT /v1/video_production/pipelines/:pipeline_id/nodes/:id/asset": "pending",
  "DELETE /v1/video_production/pipelines/:pipeline_id/nodes/:id": "script",
};

function fill(path: string, params: Record<string, string>): string {
  return path.replace(/:([A-Za-z_]+)/g, (_, name: string) => params[name] ?? `:${name}`);
}

interface Attack {
  route: string;
  what: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: Buffer | string;
  chunked?: boolean;
  /** Statuses this attack must get; default any 4xx. */
  expect?: number[];
}

function routeList() {
  const deps = { logger: createLogger({ service: "faults-hostile", level: "silent" }), corsOrigins: [], auth: { mode: "jwt" } } as unknown as GatewayDeps;
  const app = createApp(deps);
  const seen = new Set<string>();
  const routes: Array<{ method: string; path: string; key: string }> = [];
  for (const r of app.routes) {
    if (!["GET", "POST", "PUT", "PATCH", "DELETE"].includes(r.method) || r.path.includes("*")) continue;
    const key = `${r.method} ${r.path}`;
    if (seen.has(key)) continue;
    seen.add(key);
    routes.push({ method: r.method, path: r.path, key });
  }
  return routes;
}

function attacksFor(route: { method: string; path: string; key: string }, trapUrl: string): Attack[] {
  const out: Attack[] = [];
  const isV1 = route.path.startsWith("/v1/");
  const isEvents = route.key === `GET ${API}/pipelines/:id/events`;
  const isDevLogin = route.key === `POST ${API}/auth/dev-login`;
  const base: Record<string, string> = { id: route.path.includes("/nodes/:id") ? (NODE_FOR[route.key] ?? "clip") : P, pipeline_id: P };
  const auth = isEvents ? {} : bearer();
  const target = (params = base, query = isEvents ? "token=STREAM_P1" : "") => `${fill(route.path, params)}${query ? `?${query}` : ""}`;
  const add = (what: string, a: Omit<Attack, "route" | "what" | "method" | "headers" | "path"> & { headers?: Record<string, string>; path?: string }) =>
    out.push({
      route: route.key,
      what,
      method: route.method,
      path: a.path ?? target(),
      headers: a.headers ?? auth,
      body: a.body,
      chunked: a.chunked,
      expect: a.expect,
    });

  if (!isV1) return out; // /health, /ready, /metrics: no input (checked apart)

  // Credentials.
  if (isEvents) {
    const wrong = "a-secret-that-is-not-the-gateways-at-all-0123456789";
    const streamClaims = (over: Record<string, unknown> = {}) => ({
      iss: "vp-gateway",
      aud: "vp-event-stream",
      sub: "mallory",
      pid: P,
      iat: now(),
      exp: now() + 60,
      ...over,
    });
    const forged: Array<[string, string]> = [
      ["no token", ""],
      ["a bearer token as the stream token", token],
      ["a stream token of another pipeline", `STREAM_P2`],
      ["alg none", `${b64({ alg: "none", typ: "vp-stream+jwt" })}.${b64(streamClaims())}.`],
      ["a wrong key", hmacJwt(wrong, streamClaims(), { typ: "vp-stream+jwt" })],
      ["expired", hmacJwt(TEST_AUTH.secret, streamClaims({ iat: now() - 600, exp: now() - 300 }), { typ: "vp-stream+jwt" })],
      ["another pipeline's pid", hmacJwt(wrong, streamClaims({ pid: P2 }), { typ: "vp-stream+jwt" })],
      ["garbage", "garbage"],
      ["path traversal", `..%2f..%2f..%2ftmp%2f${MARK}`],
    ];
    for (const [what, t] of forged) add(`stream token: ${what}`, { path: `${fill(route.path, base)}${t ? `?token=${t}` : ""}`, expect: [401] });
  } else if (!isDevLogin) {
    for (const [what, headers] of forgedAuth(trapUrl)) add(`credentials: ${what}`, { headers, expect: [401] });
    const access = requiredAccess(route.method, fill(route.path, base));
    if (access.kind === "role" && access.role !== "viewer")
      add(`credentials: a viewer token where ${access.role} is needed`, { headers: { authorization: "Bearer VIEWER" }, expect: [403] });
  }

  // Path parameters, one at a time.
  for (const name of [...route.path.matchAll(/:([A-Za-z_]+)/g)].map((m) => m[1]!)) {
    for (const value of PARAM_ATTACKS) add(`path :${name} = ${value.slice(0, 40)}`, { path: target({ ...base, [name]: value }) });
  }

  // Query values.
  for (const q of QUERIES[route.key] ?? []) add(`query ${q.slice(0, 40)}`, { path: target(base, q) });
  if (isEvents)
    for (const q of ["lastEventId=abc", "lastEventId=-1", "lastEventId=1e20", "lastEventId=..%2f..%2fetc%2fpasswd"])
      add(`query ${q}`, { path: target(base, `token=STREAM_P1&${q}`) });

  if (route.method === "GET") return out;

  // Bodies.
  const jsonHeaders = { ...auth, "content-type": "application/json" };
  const specs = BODIES[route.key];
  const paths = specs ? specs.map((s) => target({ ...base, ...s.params })) : [target()];
  const isUpload = route.key === `PUT ${API}/pipelines/:pipeline_id/nodes/:id/asset`;
  for (const path of paths) {
    for (const text of MALFORMED_JSON) add(`malformed JSON ${JSON.stringify(text).slice(0, 30)}`, { path, headers: jsonHeaders, body: text });
    if (!isUpload) for (const text of NON_OBJECT_JSON) add(`JSON ${text}`, { path, headers: jsonHeaders, body: text });
    const huge = Buffer.from(json({ title: "x".repeat(2 * JSON_BODY_LIMIT) }));
    add("a body over the limit (Content-Length)", {
      path,
      headers: isUpload ? { ...auth, "content-type": "video/mp4" } : jsonHeaders,
      body: huge,
      expect: [413],
    });
    // The upload's streamed (chunked) case has its own test below: it is refused, but the local backend keeps a directory.
    if (!isUpload) add("a body over the limit (chunked)", { path, headers: jsonHeaders, body: huge, chunked: true, expect: [413] });
    if (isUpload) continue;
    add("deeply nested JSON", { path, headers: jsonHeaders, body: "[".repeat(DEEP) + "]".repeat(DEEP) });
    add("deeply nested JSON in a field", { path, headers: jsonHeaders, body: `{"title":"x","config":{"width":${"[".repeat(DEEP)}${"]".repeat(DEEP)}}}` });
    for (const extra of UNKNOWN_FIELDS) add(`unknown field ${json(extra).slice(0, 40)}`, { path, headers: jsonHeaders, body: json(extra) });
  }
  for (const spec of specs ?? []) {
    const path = target({ ...base, ...spec.params });
    const b = spec.valid;
    for (const extra of UNKNOWN_FIELDS)
      add(`unknown field next to valid ones ${json(extra).slice(0, 30)}`, { path, headers: jsonHeaders, body: json({ ...b, ...extra }) });
    for (const { path: objPath, keys } of objectsIn(b)) {
      add(`unknown field in ${objPath.join(".") || "body"}`, { path, headers: jsonHeaders, body: json(setAt(b, [...objPath, `x-${MARK}`], 1)) });
      for (const key of keys)
        for (const t of TRAVERSAL.slice(0, 4))
          add(`key ${[...objPath, key].join(".")} renamed ${t}`, { path, headers: jsonHeaders, body: json(renameKey(b, objPath, key, t)) });
    }
    for (const leaf of leaves(b)) {
      const name = String(leaf.path.filter((p) => typeof p === "string").at(-1));
      for (const wrong of wrongTypes(leaf.value))
        add(`${leaf.path.join(".")} = ${json(wrong)}`, { path, headers: jsonHeaders, body: json(setAt(b, leaf.path, wrong)) });
      if (typeof leaf.value !== "string") continue;
      // NUL is hostile in any string, free text included (Postgres cannot store it).
      add(`${leaf.path.join(".")} with a NUL character`, { path, headers: jsonHeaders, body: json(setAt(b, leaf.path, `${leaf.value}\u0000`)) });
      add(`${leaf.path.join(".")} with a lone UTF-16 surrogate`, { path, headers: jsonHeaders, body: json(setAt(b, leaf.path, `${leaf.value}\ud800`)) });
      if (FREE_TEXT.has(name)) continue;
      for (const t of TITLES.has(name) ? TITLE_ATTACKS : TRAVERSAL)
        add(`${leaf.path.join(".")} = ${json(t).slice(0, 40)}`, { path, headers: jsonHeaders, body: json(setAt(b, leaf.path, t)) });
    }
  }
  if (isUpload) {
    const pending = target();
    for (const ct of [
      "",
      "../../etc/passwd",
      "video/../../mp4",
      `video/mp4/../../../tmp/${MARK}`,
      "application/x-sh",
      "text/html",
      "audio/mpeg",
      "application/json",
      "image/png",
    ]) {
      add(`upload Content-Type ${ct || "(none)"}`, { path: pending, headers: { ...auth, ...(ct ? { "content-type": ct } : {}) }, body: clipBytes });
    }
    add("an empty upload", { path: pending, headers: { ...auth, "content-type": "video/mp4" }, body: Buffer.alloc(0) });
    add("an upload to a completed node", { path: target({ ...base, id: "clip" }), headers: { ...auth, "content-type": "video/mp4" }, body: clipBytes });
    add("an upload to a node that is not an asset", {
      path: target({ ...base, id: "merge" }),
      headers: { ...auth, "content-type": "video/mp4" },
      body: clipBytes,
    });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------

interface Fake {
  origin: string;
  port: number;
  requests: string[];
  close(): Promise<void>;
}
async function fakeServer(host: string, handler: (req: http.IncomingMessage, res: http.ServerResponse) => void): Promise<Fake> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const { port: p } = server.address() as { port: number };
  return { origin: `http://${host}:${p}`, port: p, requests, close: () => new Promise((resolve) => server.close(() => resolve())) };
}

let media: Fake;
let trap: Fake;

beforeAll(async () => {
  infra = await startFaultInfra("faults-hostile");
  // The media host binds 127.0.0.2 and only that address is allowed: the trap on 127.0.0.1 stays forbidden.
  trap = await fakeServer("127.0.0.1", (_req, res) => res.end("internal secret"));
  media = await fakeServer("127.0.0.2", (req, res) => {
    const url = new URL(req.url!, "http://x");
    if (url.pathname === "/clip.mp4") return res.writeHead(200, { "content-type": "video/mp4", "content-length": clipBytes.length }).end(clipBytes);
    if (url.pathname === "/redirect") return res.writeHead(302, { location: url.searchParams.get("to")! }).end();
    if (url.pathname.startsWith("/hops/")) {
      const n = Number(url.pathname.slice(6));
      return res.writeHead(302, { location: `/hops/${n + 1}` }).end();
    }
    res.writeHead(404).end("not here");
  });
  fx = await infra.stack({
    jobAckWaitMs: 5000,
    env: { ASSET_URL_ALLOW_CIDRS: "127.0.0.2/32", ASSET_URL_TIMEOUT_MS: "20000", MAX_UPLOAD_BYTES: String(MAX_UPLOAD_BYTES) },
  });
  port = Number(new URL(fx.stack.baseUrl).port);
  token = await fx.stack.token();
  const clip = join(infra.dir, "clip.mp4");
  await makeTestClip({ path: clip, durationSeconds: 1, width: 64, height: 48, fps: 10, audio: false });
  clipBytes = await readFile(clip);

  const { api } = fx;
  P = (await api.ok("POST", "/pipelines", { title: "hostile" })).pipeline.id;
  P2 = (await api.ok("POST", "/pipelines", { title: "other" })).pipeline.id;
  await api.ok("POST", `/pipelines/${P}/nodes`, { id: "clip", title: "clip", type: "asset", asset: { type: "video" } });
  await api.ok("PUT", `/pipelines/${P}/nodes/clip/asset`, new Uint8Array(clipBytes), { "content-type": "video/mp4" });
  await api.ok("POST", `/pipelines/${P}/nodes/clip/execute`);
  expect((await api.waitForStatus(P, "clip", ["completed", "failed"], 120_000)).status).toBe("completed");
  await api.ok("POST", `/pipelines/${P}/nodes`, { id: "pending", title: "pending", type: "asset", asset: { type: "video" } });
  await api.ok("POST", `/pipelines/${P}/nodes`, { id: "script", title: "script", type: "asset", asset: { type: "text", content: "hello" } });
  await api.ok("POST", `/pipelines/${P}/nodes`, { id: "merge", title: "merge", type: "merge-videos", inputs: { segments: ["clip"] } });
  streamToken = (await api.ok("POST", `/pipelines/${P}/events/token`)).token;
}, 600_000);

afterAll(async () => {
  await media?.close();
  await trap?.close();
  await infra?.destroy();
});

// ---------------------------------------------------------------------------------------------------
// Oversized pipelines: the limits on every write path, and what a pipeline at the limits costs the gateway.

/** A request whose answer is never read: the socket stays open and paused (a stalled client). */
function stalled(path: string, headers: Record<string, string> = {}): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, "127.0.0.1", () => {
      const head = Object.entries({ host: `127.0.0.1:${port}`, ...headers })
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join("");
      socket.write(`GET ${path} HTTP/1.1\r\n${head}\r\n`);
      socket.pause();
      resolve(socket);
    });
    socket.once("error", reject);
  });
}

/** Resident memory of a process, in bytes (VmRSS). */
async function rssOf(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  return Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)![1]) * 1024;
}

const textNode = (id: string, content = "x") => ({ id, title: id, type: "asset", asset: { type: "text", content } });
const pipelineDoc = (nodes: unknown[]) => ({ format: "video-pipelines/pipeline", version: 1, title: "oversized", nodes });
/** The gateway's defaults (MAX_PIPELINE_NODES, MAX_PIPELINE_STRUCTURE_BYTES): the stack sets neither. */
const MAX_NODES = 500;
const MAX_STRUCTURE_BYTES = 2 * 1024 * 1024;
const POD_MEMORY_LIMIT = 512 * 1024 * 1024;

describe("hostile input: oversized pipelines", () => {
  it("node count and structure size are refused with the limit on POST .../nodes, PATCH .../nodes/:id and import, and nothing is written", async () => {
    const small = await freePort();
    const replica = await fx.replica("gateway", { PORT: String(small), MAX_PIPELINE_NODES: "5", MAX_PIPELINE_STRUCTURE_BYTES: "100000" });
    const call = (method: string, path: string, body?: unknown) =>
      send(method, `${API}${path}`, {
        port: small,
        headers: { ...bearer(), "content-type": "application/json" },
        body: body === undefined ? undefined : json(body),
      });
    const { json: created } = await call("POST", "/pipelines", { title: "limits" });
    const L = created.pipeline.id as string;
    for (const id of ["a", "b", "c", "d"]) expect((await call("POST", `/pipelines/${L}/nodes`, textNode(id))).status).toBe(201);

    // Node count: two adds racing for the last place, then one past it; an import with one node too many.
    const race = await Promise.all(["e", "f"].map((id) => call("POST", `/pipelines/${L}/nodes`, textNode(id))));
    expect(race.map((r) => r.status).sort()).toEqual([201, 422]);
    const full = await call("POST", `/pipelines/${L}/nodes`, textNode("g"));
    expect(full.status).toBe(422);
    expect(full.json).toEqual({ error: "A pipeline has at most 5 nodes; this write would make it 6", limit: "nodes", max: 5 });
    const imported = await call("POST", "/pipelines/import", pipelineDoc(["a", "b", "c", "d", "e", "f"].map((id) => textNode(id))));
    expect(imported.status).toBe(422);
    expect(imported.json.error).toBe("The pipeline document has 1 problem; nothing was created");
    expect(imported.json.problems[0].text).toBe("nodes: a pipeline has at most 5 nodes; this document has 6");

    // Structure size: a PATCH and an add that would pass it, and an import that would.
    const { json: sized } = await call("POST", "/pipelines", { title: "sized" });
    const S = sized.pipeline.id as string;
    expect((await call("POST", `/pipelines/${S}/nodes`, textNode("a", "x".repeat(60_000)))).status).toBe(201);
    expect((await call("POST", `/pipelines/${S}/nodes`, textNode("b"))).status).toBe(201);
    const before = await state();
    const sizeError = /^A pipeline's structure \(titles, inputs, config and assets of its nodes\) is at most 100000 bytes; this write would make it \d+ bytes$/;
    for (const [method, path, body] of [
      ["PATCH", `/pipelines/${S}/nodes/b`, { asset: { content: "y".repeat(50_000) } }],
      ["PATCH", `/pipelines/${S}/nodes/b`, { config: {}, title: "t".repeat(10), asset: { content: "y".repeat(45_000) } }],
      ["POST", `/pipelines/${S}/nodes`, textNode("c", "z".repeat(50_000))],
      ["POST", `/pipelines/${L}/nodes`, textNode("h", "z".repeat(120_000))],
      ["POST", "/pipelines/import", pipelineDoc([textNode("a", "x".repeat(60_000)), textNode("b", "x".repeat(60_000))])],
    ] as Array<[string, string, unknown]>) {
      const reply = await call(method, path, body);
      // The node count is checked first: the full pipeline answers 422 for the add.
      if (path.includes(L)) expect(reply.status, `${method} ${path}`).toBe(422);
      else {
        expect(reply.status, `${method} ${path}: ${reply.text.slice(0, 200)}`).toBe(413);
        expect(reply.json.error).toMatch(sizeError);
      }
    }
    expect((await state()).db).toEqual(before.db);
    expect(replica.logs.filter((l) => l.msg === "unhandled error")).toEqual([]);
    await replica.stop();
  });

  it("a pipeline at the limits, 20 event streams that never read, slow GETs and 40 estimates at once: the gateway stays under 512 MB and /health answers", async () => {
    const gateway = fx.stack.services.get("gateway")!;
    // At the limits: 500 nodes (one import), then about 2 MiB of text in three of them (three PATCHes).
    const imported = await send("POST", `${API}/pipelines/import`, {
      headers: { ...bearer(), "content-type": "application/json" },
      body: json(pipelineDoc(Array.from({ length: MAX_NODES }, (_, i) => textNode(`n${i}`)))),
    });
    expect(imported.status, imported.text.slice(0, 300)).toBe(201);
    const O = imported.json.pipeline.id as string;
    const fill = Math.floor((MAX_STRUCTURE_BYTES - 40_000) / 3);
    for (const id of ["n0", "n1", "n2"]) {
      const reply = await send("PATCH", `${API}/pipelines/${O}/nodes/${id}`, {
        headers: { ...bearer(), "content-type": "application/json" },
        body: json({ asset: { content: "x".repeat(fill) } }),
      });
      expect(reply.status, reply.text.slice(0, 200)).toBe(200);
    }
    const over = await send("PATCH", `${API}/pipelines/${O}/nodes/n3`, {
      headers: { ...bearer(), "content-type": "application/json" },
      body: json({ asset: { content: "x".repeat(60_000) } }),
    });
    expect(over.status, over.text.slice(0, 200)).toBe(413);
    const more = await send("POST", `${API}/pipelines/${O}/nodes`, {
      headers: { ...bearer(), "content-type": "application/json" },
      body: json(textNode("one-more")),
    });
    expect(more.status).toBe(422);
    expect(more.json.error).toBe(`A pipeline has at most ${MAX_NODES} nodes; this write would make it ${MAX_NODES + 1}`);

    const rssBefore = await rssOf(gateway.pid);
    let peak = rssBefore;
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        peak = Math.max(peak, await rssOf(gateway.pid));
        await new Promise((r) => setTimeout(r, 50));
      }
    })();
    const healthMs: number[] = [];
    const prober = (async () => {
      while (sampling) {
        const started = performance.now();
        const reply = await send("GET", "/health");
        healthMs.push(performance.now() - started);
        expect(reply.status).toBe(200);
        await new Promise((r) => setTimeout(r, 100));
      }
    })();

    const sockets: Socket[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        const { token: t } = (await send("POST", `${API}/pipelines/${O}/events/token`, { headers: bearer() })).json;
        sockets.push(await stalled(`${API}/pipelines/${O}/events?token=${t}`));
      }
      for (let i = 0; i < 5; i++) sockets.push(await stalled(`${API}/pipelines/${O}`, bearer()));
      const estimates = await Promise.all(Array.from({ length: 40 }, () => send("GET", `${API}/pipelines/${O}/estimate`, { headers: bearer() })));
      for (const e of estimates) expect(e.status, e.text.slice(0, 200)).toBe(200);
      expect(estimates[0]!.json.estimate.nodes).toHaveLength(MAX_NODES);
      // Held for a while: the stalled clients' bytes stay where they are.
      await new Promise((r) => setTimeout(r, 3000));
      // The gateway still serves the pipeline whole to a client that reads.
      const whole = await send("GET", `${API}/pipelines/${O}`, { headers: bearer() });
      expect(whole.json.pipeline.nodes).toHaveLength(MAX_NODES);
    } finally {
      sampling = false;
      await Promise.all([sampler, prober]);
      for (const socket of sockets) socket.destroy();
    }
    healthMs.sort((a, b) => a - b);
    const median = healthMs[Math.floor(healthMs.length / 2)]!;
    console.log(
      `oversized pipeline attack: gateway RSS ${Math.round(rssBefore / 2 ** 20)} MB before, peak ${Math.round(peak / 2 ** 20)} MB; /health ${healthMs.length} probes, median ${Math.round(median)} ms, max ${Math.round(healthMs.at(-1)!)} ms`,
    );
    expect(peak).toBeLessThan(POD_MEMORY_LIMIT);
    // Responsive throughout: the median is what a probe sees; the worst one is bounded by one shared read on a busy machine.
    expect(median).toBeLessThan(250);
    expect(healthMs.at(-1)!).toBeLessThan(5000);
    expect(gateway.logs.filter((l) => l.msg === "unhandled error")).toEqual([]);
  }, 300_000);
});

describe("hostile input", () => {
  it("every route answers hostile input with a 4xx and a reason, and nothing changes", async () => {
    const routes = routeList();
    const keys = routes.map((r) => r.key);
    // The field tables name real routes, and every route that reads a JSON body has one.
    for (const key of [...Object.keys(BODIES), ...Object.keys(QUERIES), ...Object.keys(NODE_FOR)]) expect(keys, key).toContain(key);
    expect(keys.length).toBeGreaterThanOrEqual(27);

    const viewer = await fx.stack.token("viewer");
    // Deletes last: a delete that wrongly went through would hide every later finding behind 404s.
    const attacks = routes.flatMap((r) => attacksFor(r, trap.origin)).sort((a, b) => Number(a.method === "DELETE") - Number(b.method === "DELETE"));
    for (const a of attacks) if (a.headers.authorization === "Bearer VIEWER") a.headers = { ...a.headers, authorization: `Bearer ${viewer}` };
    // Stream tokens live 60 s: valid ones are minted as the sweep goes (minting changes nothing).
    const fresh = { at: 0, p1: "", p2: "" };
    const streamTokens = async () => {
      if (Date.now() - fresh.at > 20_000) {
        fresh.p1 = (await fx.api.ok("POST", `/pipelines/${P}/events/token`)).token;
        fresh.p2 = (await fx.api.ok("POST", `/pipelines/${P2}/events/token`)).token;
        fresh.at = Date.now();
      }
      return fresh;
    };

    // Quiet first: the fixture's run has settled when two snapshots agree.
    let before = await state();
    for (let i = 0; i < 30; i++) {
      await new Promise((r) => setTimeout(r, 500));
      const again = await state();
      if (JSON.stringify(again) === JSON.stringify(before)) break;
      before = again;
    }
    const trapBefore = trap.requests.length;

    const failures: string[] = [];
    const perRoute = new Map<string, number>();
    const burn = cpuLoad();
    const loadedMs: number[] = [];
    for (const a of attacks) {
      let reply: Reply;
      // Bodies over the limit are sent while every core is busy (CI shares its machine): the 413 must still be read.
      const loaded = a.what.startsWith("a body over the limit");
      if (loaded) burn.start();
      else await burn.stop();
      const sentAt = performance.now();
      try {
        let path = a.path;
        if (path.includes("STREAM_P")) {
          const t = await streamTokens();
          path = path.replace("STREAM_P1", t.p1).replace("STREAM_P2", t.p2);
        }
        reply = await send(a.method, path, { headers: a.headers, body: a.body, chunked: a.chunked });
        if (loaded) loadedMs.push(performance.now() - sentAt);
      } catch (error) {
        failures.push(`${a.route} | ${a.what}: no answer (${(error as Error).message})`);
        continue;
      }
      perRoute.set(a.route, (perRoute.get(a.route) ?? 0) + 1);
      const okStatus = a.expect ? a.expect.includes(reply.status) : reply.status >= 400 && reply.status < 500;
      const reason = typeof reply.json?.error === "string" && reply.json.error.length > 0;
      const leaked = /root:x:0:0|internal secret/.test(reply.text);
      if (!okStatus || !reason || leaked) {
        failures.push(`${a.route} | ${a.what} | ${a.method} ${a.path.slice(0, 120)}: ${reply.status} ${reply.text.slice(0, 200)}`);
      }
    }
    await burn.stop();
    const after = await state();

    console.log(
      `hostile sweep: ${attacks.length} requests over ${perRoute.size} routes; ${loadedMs.length} bodies over the limit answered under CPU load on ${availableParallelism()} cores, slowest ${Math.round(Math.max(0, ...loadedMs))} ms\n${[...perRoute].map(([r, n]) => `  ${String(n).padStart(4)}  ${r}`).join("\n")}`,
    );
    expect(failures, failures.join("\n")).toEqual([]);
    expect(after.db).toEqual(before.db);
    expect(after.storage).toEqual(before.storage);
    expect(after.streams).toEqual(before.streams);
    expect(await markerFiles()).toEqual([]);
    expect(trap.requests.length, "a jku/x5u header was fetched").toBe(trapBefore);
    const unhandled = fx.stack.services.get("gateway")!.logs.filter((l) => l.msg === "unhandled error");
    expect(unhandled, JSON.stringify(unhandled.slice(0, 3))).toEqual([]);
    // The oversized bodies are sent with every core busy, which lengthens the sweep.
  }, 600_000);

  it("an upload over the limit without a length is refused with 413 and stores nothing", async () => {
    const before = await state();
    const path = `${API}/pipelines/${P}/nodes/pending/asset`;
    const huge = Buffer.alloc(2 * MAX_UPLOAD_BYTES, 1);
    const reply = await send("PUT", path, { headers: { ...bearer(), "content-type": "video/mp4" }, body: huge, chunked: true });
    expect(reply.status, reply.text).toBe(413);
    expect(reply.json.error).toBe(`Upload exceeds the limit of ${MAX_UPLOAD_BYTES} bytes`);
    const after = await state();
    expect(after.db).toEqual(before.db);
    expect(after.streams).toEqual(before.streams);
    // No object: every file is as it was. Known gap of the local backend (reported, packages/storage): the
    // directories the stream was headed for stay behind, empty; they are the only difference allowed here.
    const files = (t: string[]) => t.filter((e) => !e.endsWith("/"));
    expect(files(after.storage)).toEqual(files(before.storage));
    const added = after.storage.filter((e) => !before.storage.includes(e));
    expect(added.every((e) => `pipelines/${P}/nodes/pending/asset/`.startsWith(e))).toBe(true);
  });

  it("the open routes (/health, /ready, /metrics) take no input and change nothing", async () => {
    const before = await state();
    for (const path of ["/health", "/ready", "/metrics"]) {
      for (const headers of [{}, bearer("garbage"), { "content-type": "application/json" }] as Array<Record<string, string>>) {
        const reply = await send("GET", `${path}?x=../../etc/passwd`, { headers });
        expect(reply.status, `${path}: ${reply.text.slice(0, 100)}`).toBe(200);
        expect(reply.text).not.toMatch(/root:x:0:0/);
      }
      for (const method of ["POST", "PUT", "DELETE", "PATCH"]) {
        const reply = await send(method, path, { headers: { "content-type": "application/json" }, body: "{" });
        expect(reply.status, `${method} ${path}`).toBe(404);
        expect(reply.json?.error).toBeTruthy();
      }
    }
    expect(await state()).toEqual(before);
  });

  it("free text stays text: traversal strings in titles, content and upload parameters never become paths", async () => {
    const { api } = fx;
    const texts = TRAVERSAL.filter((t) => !TITLE_ATTACKS.includes(t));
    const created: string[] = [];
    for (const title of texts) {
      const { pipeline } = await api.ok("POST", "/pipelines", { title });
      expect(pipeline.title).toBe(title.trim());
      created.push(pipeline.id);
      const res = await send("GET", `${API}/pipelines/${pipeline.id}/export`, { headers: bearer() });
      expect(res.status).toBe(200);
      expect(res.headers["content-disposition"]).toMatch(/^attachment; filename="[a-z0-9-]+\.pipeline\.json"$/);
    }
    const T = created[0]!;
    const content = TRAVERSAL.filter((t) => !t.includes("\u0000")).join("\n");
    await api.ok("POST", `/pipelines/${T}/nodes`, { id: "text", title: "/etc/passwd", type: "asset", asset: { type: "text", content } });
    await api.ok("POST", `/pipelines/${T}/nodes/text/execute`);
    const text = await api.waitForStatus(T, "text", ["completed", "failed"], 120_000);
    expect(text.status, JSON.stringify(text.metadata)).toBe("completed");
    expect(String(text.output!.s3Key)).toMatch(new RegExp(`^pipelines/${T}/nodes/text/[^/]+/output\\.txt$`));
    const out = await send("GET", `${API}/pipelines/${T}/nodes/text/output`, { headers: bearer() });
    expect(out.text).toBe(content);
    // A Content-Type parameter is not a file name: the key is generated.
    await api.ok("POST", `/pipelines/${T}/nodes`, { id: "up", title: "up", type: "asset", asset: { type: "video" } });
    const up = await send("PUT", `${API}/pipelines/${T}/nodes/up/asset`, {
      headers: { ...bearer(), "content-type": `video/mp4; name="../../../../tmp/${MARK}"; filename=${MARK}` },
      body: clipBytes,
    });
    expect(up.status, up.text).toBe(200);
    expect(up.json.node.asset.source).toMatch(new RegExp(`^pipelines/${T}/nodes/up/asset/[0-9a-f-]+\\.mp4$`));
    const files = await tree(join(fx.scratch, "storage"));
    expect(files.filter((f) => !f.startsWith("pipelines/"))).toEqual([]);
    expect(await markerFiles()).toEqual([]);
  });

  it("URL assets: every SSRF target fails its node with the reason and the trap on 127.0.0.1 sees nothing", async () => {
    const { api } = fx;
    const T = trap.port;
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "ssrf" });
    const S = pipeline.id as string;
    const here = hostname();
    const hereResolves = await lookup(here)
      .then((a) => a.address.startsWith("127."))
      .catch(() => false);
    const redirect = (to: string) => `${media.origin}/redirect?to=${encodeURIComponent(to)}`;
    const targets: Array<[string, string, RegExp]> = [
      ["loopback", `http://127.0.0.1:${T}/secret`, /^refusing to fetch http:\/\/127\.0\.0\.1:\d+\/secret: 127\.0\.0\.1 is a loopback address$/],
      ["loopback, another address", `http://127.0.0.3:${T}/secret`, /127\.0\.0\.3 is a loopback address$/],
      [
        "a name resolving to 127.0.0.1",
        `http://localhost:${T}/secret`,
        /^refusing to fetch http:\/\/localhost:\d+\/secret: localhost resolves to 127\.0\.0\.1, a loopback address$/,
      ],
      ["a decimal IP", `http://2130706433:${T}/secret`, /: 127\.0\.0\.1 is a loopback address$/],
      ["a hex IP", `http://0x7f000001:${T}/secret`, /: 127\.0\.0\.1 is a loopback address$/],
      ["an octal IP", `http://0177.0.0.1:${T}/secret`, /: 127\.0\.0\.1 is a loopback address$/],
      ["a short IP", `http://127.1:${T}/secret`, /: 127\.0\.0\.1 is a loopback address$/],
      ["the unspecified address", `http://0.0.0.0:${T}/secret`, /: 0\.0\.0\.0 is an unspecified/],
      ["IPv6 loopback", `http://[::1]:${T}/secret`, /: ::1 is a loopback address$/],
      ["IPv4-mapped IPv6 loopback", `http://[::ffff:127.0.0.1]:${T}/secret`, /IPv4-mapped form of 127\.0\.0\.1, a loopback address$/],
      ["the metadata address (link-local)", "http://169.254.169.254/latest/meta-data/iam/security-credentials/", /169\.254\.169\.254 is a link-local address/],
      ["IPv4-mapped metadata address", "http://[::ffff:169.254.169.254]/latest/meta-data/", /IPv4-mapped form of 169\.254\.169\.254, a link-local/],
      ["IPv6 link-local", "http://[fe80::1]/x.mp4", /fe80::1 is a link-local address$/],
      ["private 10/8", "http://10.0.0.1/x.mp4", /10\.0\.0\.1 is a private address$/],
      ["private 172.16/12", "http://172.16.0.1/x.mp4", /172\.16\.0\.1 is a private address$/],
      ["private 192.168/16", "http://192.168.0.1/x.mp4", /192\.168\.0\.1 is a private address$/],
      ["IPv6 unique local", "http://[fd00::1]/x.mp4", /fd00::1 is a private \(unique local\) address$/],
      ["CGNAT", "http://100.64.0.1/x.mp4", /100\.64\.0\.1 is a carrier-grade NAT/],
      ["multicast", "http://224.0.0.1/x.mp4", /224\.0\.0\.1 is a multicast address$/],
      ["broadcast", "http://255.255.255.255/x.mp4", /255\.255\.255\.255 is the broadcast address$/],
      [
        "a redirect into loopback",
        redirect(`http://127.0.0.1:${T}/secret`),
        /\(redirect 1 to http:\/\/127\.0\.0\.1:\d+\/secret\): 127\.0\.0\.1 is a loopback address$/,
      ],
      [
        "a redirect to localhost",
        redirect(`http://localhost:${T}/secret`),
        /\(redirect 1 to http:\/\/localhost:\d+\/secret\): localhost resolves to 127\.0\.0\.1, a loopback address$/,
      ],
      [
        "a redirect to a decimal IP",
        redirect(`http://2130706433:${T}/secret`),
        /\(redirect 1 to http:\/\/127\.0\.0\.1:\d+\/secret\): 127\.0\.0\.1 is a loopback address$/,
      ],
      ["a redirect to the metadata address", redirect("http://169.254.169.254/latest/meta-data/"), /169\.254\.169\.254 is a link-local address/],
      ["a redirect to file:", redirect("file:///etc/passwd"), /only http and https URLs are fetched, not file:$/],
      ["endless redirects", `${media.origin}/hops/0`, /^Asset URL: fetching http:\/\/127\.0\.0\.2:\d+\/hops\/0 took more than 5 redirects$/],
      ["a 404", `${media.origin}/missing.mp4`, /^Asset URL: http:\/\/127\.0\.0\.2:\d+\/missing\.mp4 answered 404 Not Found$/],
    ];
    if (hereResolves)
      targets.push([
        `this machine's name (${here})`,
        `http://${here}:${T}/secret`,
        new RegExp(`${here} resolves to 127\\.\\d+\\.\\d+\\.\\d+, a loopback address$`),
      ]);

    const ids = targets.map((_, i) => `u${i}`);
    for (const [i, [, url]] of targets.entries()) {
      await api.ok("POST", `/pipelines/${S}/nodes`, { id: ids[i], title: `url ${i}`, type: "asset", asset: { type: "video", url } });
    }
    // The positive control: the allowed media host's clip becomes the node's output.
    await api.ok("POST", `/pipelines/${S}/nodes`, { id: "good", title: "good", type: "asset", asset: { type: "video", url: `${media.origin}/clip.mp4` } });
    for (const id of [...ids, "good"]) await api.ok("POST", `/pipelines/${S}/nodes/${id}/execute`);

    const problems: string[] = [];
    for (const [i, [what, url, reason]] of targets.entries()) {
      const node = await api.waitForStatus(S, ids[i]!, ["completed", "failed"], 120_000);
      const error = String((node.metadata as { error?: unknown } | null)?.error ?? "");
      if (node.status !== "failed" || !reason.test(error)) problems.push(`${what} (${url}): ${node.status} ${JSON.stringify(error)}`);
    }
    const good = await api.waitForStatus(S, "good", ["completed", "failed"], 120_000);
    expect(good.status, JSON.stringify(good.metadata)).toBe("completed");
    expect(good.output).toMatchObject({ type: "video", width: 64, height: 48, contentType: "video/mp4", size: clipBytes.length });
    expect(String(good.output!.s3Key)).toMatch(new RegExp(`^pipelines/${S}/nodes/good/[^/]+/output\\.mp4$`));

    expect(problems, problems.join("\n")).toEqual([]);
    expect(trap.requests).toEqual([]);
  });
});

// ---------------------------------------------------------------------------------------------------
// The Host header and request ids.

/** Busy loops on every core (worker threads) between start() and stop(). */
function cpuLoad() {
  let workers: Worker[] = [];
  return {
    start() {
      if (!workers.length) workers = Array.from({ length: availableParallelism() }, () => new Worker("for (;;) {}", { eval: true }));
    },
    async stop() {
      await Promise.all(workers.map((w) => w.terminate()));
      workers = [];
    },
  };
}

/** One request with exactly these headers (Host included) to a gateway on `to`. */
function sendTo(to: number, method: string, path: string, headers: Record<string, string>): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port: to, method, path, headers, agent: false, setHost: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        let parsed: any;
        try {
          parsed = JSON.parse(text);
        } catch {
          parsed = undefined;
        }
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json: parsed });
      });
    });
    req.on("error", reject);
    req.setTimeout(30_000, () => req.destroy(new Error("no answer within 30 s")));
    req.end();
  });
}

describe("hostile input: the Host header and request ids", () => {
  it("the dev login hands no token to a foreign Host (a page that rebound its name to 127.0.0.1); localhost gets one", async () => {
    const devPort = await freeTestPort();
    const replica = await fx.replica("gateway", { PORT: String(devPort), AUTH_DEV_LOGIN: "1" });
    try {
      // With the dev login on and no HOST, the gateway listens on loopback only.
      expect(replica.logs.find((l) => l.msg === "gateway listening")).toMatchObject({ host: "127.0.0.1", port: devPort });
      const login = `${API}/auth/dev-login`;
      for (const host of [
        `attacker.example:${devPort}`,
        "attacker.example",
        `localhost.attacker.example:${devPort}`,
        `127.0.0.1.nip.io:${devPort}`,
        "localhost.",
        `${MARK}.example`,
      ]) {
        const reply = await sendTo(devPort, "POST", login, { host, "content-length": "0" });
        expect(reply.status, `${host}: ${reply.text.slice(0, 200)}`).toBe(403);
        expect(reply.json?.error).toMatch(/^The dev login answers only requests for localhost, 127\.0\.0\.1 or \[::1\]/);
        expect(reply.text).not.toMatch(/"token"|eyJ/);
      }
      for (const host of [`localhost:${devPort}`, `127.0.0.1:${devPort}`]) {
        const reply = await sendTo(devPort, "POST", login, { host, "content-length": "0" });
        expect(reply.status, `${host}: ${reply.text.slice(0, 200)}`).toBe(201);
        expect(reply.json.token).toEqual(expect.any(String));
      }
      expect(replica.logs.filter((l) => l.msg === "unhandled error")).toEqual([]);
    } finally {
      await replica.stop();
    }
  });

  it("a request id longer than 128 characters or outside [A-Za-z0-9._:-] is replaced: never echoed, never logged", async () => {
    const gateway = fx.stack.services.get("gateway")!;
    const path = `${API}/pipelines?per=1`;
    const plain = `trace-${"a".repeat(122)}`;
    const kept = await sendTo(port, "GET", path, { host: `127.0.0.1:${port}`, ...bearer(), "x-request-id": plain });
    expect(kept.status).toBe(200);
    expect(kept.headers["x-request-id"]).toBe(plain);
    for (const id of ["r".repeat(8 * 1024), "s".repeat(129), "a b", `../../tmp/${MARK}`, "id\twith\ttabs"]) {
      const reply = await sendTo(port, "GET", path, { host: `127.0.0.1:${port}`, ...bearer(), "x-request-id": id });
      expect(reply.status).toBe(200);
      expect(reply.headers["x-request-id"]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
      expect(reply.text).not.toContain(id);
    }
    await new Promise((r) => setTimeout(r, 200));
    const ids = gateway.logs.map((l) => l.requestId).filter((v): v is string => typeof v === "string");
    expect(ids).toContain(plain);
    expect(ids.filter((v) => v.length > 128 || !/^[A-Za-z0-9._:-]+$/.test(v))).toEqual([]);
  });
});
