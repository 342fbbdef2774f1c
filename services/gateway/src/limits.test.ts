/**
 * Pipeline limits and the write paths' shared validation, through `app.request()` on the real Postgres and NATS:
 * node count and structure size on every write path (add, edit, import), one field check for all of them,
 * strings Postgres cannot store, and tokens with a subject that is not a string.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT } from "jose";
import type pg from "pg";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PIPELINE_DOCUMENT_FORMAT } from "@vp/contracts";
import { createPool, roleUrl } from "@vp/db";
import { createLocalStorage } from "@vp/storage";
import { createLogger } from "@vp/telemetry";
import { createTestBus, createTestDatabase, TEST_AUTH, testToken, type TestBus, type TestDatabase } from "@vp/testkit";
import { createApp } from "./app";
import { createGatewayAuth } from "./auth";
import type { GatewayDeps } from "./deps";

const LIMITS = { maxNodes: 3, maxStructureBytes: 20_000 };

let db: TestDatabase;
let bus: TestBus;
let reader: pg.Pool;
let editor: pg.Pool;
let scratch: string;
let deps: GatewayDeps;
let app: ReturnType<typeof createApp>;
const logs: Array<Record<string, unknown>> = [];
const unhandled = () => logs.filter((l) => l.msg === "unhandled error");

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "vp-gw-limits-"));
  db = await createTestDatabase();
  bus = await createTestBus();
  reader = createPool({ url: roleUrl(db.adminUrl, "vp_reader"), applicationName: "gw-limits-reader" });
  editor = createPool({ url: roleUrl(db.adminUrl, "vp_editor"), applicationName: "gw-limits-editor" });
  const logger = createLogger({ service: "gateway-test", level: "info", destination: { write: (line: string) => void logs.push(JSON.parse(line)) } });
  deps = {
    reader,
    editor,
    bus: bus.bus,
    topology: bus.topology,
    storage: createLocalStorage({ root: join(scratch, "storage") }),
    logger,
    auth: createGatewayAuth(
      { mode: "jwt", secret: TEST_AUTH.secret, issuer: TEST_AUTH.issuer, audience: TEST_AUTH.audience, devLogin: false, devLoginTtlSeconds: 3600 },
      logger,
    ),
    limits: LIMITS,
    maxUploadBytes: 1024 * 1024,
    executeVerdictTimeoutMs: 5_000,
    corsOrigins: [],
    closing: new Promise(() => {}),
  };
  app = createApp(deps);
});

afterAll(async () => {
  await reader?.end();
  await editor?.end();
  await bus?.cleanup();
  await db?.drop();
  await rm(scratch, { recursive: true, force: true });
});

async function call(method: string, path: string, body?: unknown, token?: string) {
  const headers: Record<string, string> = { authorization: `Bearer ${token ?? (await testToken())}` };
  if (body !== undefined) headers["content-type"] = "application/json";
  const res = await app.request(`/v1/video_production${path}`, {
    method,
    headers,
    body: typeof body === "string" ? body : body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

const newPipeline = async (title: string) => (await call("POST", "/pipelines", { title })).body.pipeline.id as string;
const textNode = (id: string, content: string) => ({ id, title: id, type: "asset", asset: { type: "text", content } });
const doc = (nodes: unknown[]) => ({ format: PIPELINE_DOCUMENT_FORMAT, version: 1, title: "imported", nodes });

describe("pipeline limits on every write path", () => {
  it("a node past the node limit is a 422 naming the limit; of two concurrent adds at the limit one gets in", async () => {
    const P = await newPipeline("full");
    for (const id of ["a", "b"]) expect((await call("POST", `/pipelines/${P}/nodes`, textNode(id, "x"))).status).toBe(201);
    const [c, d] = await Promise.all(["c", "d"].map((id) => call("POST", `/pipelines/${P}/nodes`, textNode(id, "x"))));
    expect([c!.status, d!.status].sort()).toEqual([201, 422]);
    const refused = c!.status === 422 ? c! : d!;
    expect(refused.body).toEqual({ error: "A pipeline has at most 3 nodes; this write would make it 4", limit: "nodes", max: 3 });
    expect((await call("GET", `/pipelines/${P}/nodes`)).body.nodes).toHaveLength(3);
  });

  it("structure past the size limit is a 413 naming the limit, on POST .../nodes, PATCH .../nodes/:id and import", async () => {
    const P = await newPipeline("big");
    expect((await call("POST", `/pipelines/${P}/nodes`, textNode("a", "x".repeat(15_000)))).status).toBe(201);
    const post = await call("POST", `/pipelines/${P}/nodes`, textNode("b", "x".repeat(6_000)));
    expect(post.status).toBe(413);
    expect(post.body.error).toMatch(
      /^A pipeline's structure \(titles, inputs, config and assets of its nodes\) is at most 20000 bytes; this write would make it 21\d{3} bytes$/,
    );
    expect((await call("POST", `/pipelines/${P}/nodes`, textNode("b", "small"))).status).toBe(201);
    const patch = await call("PATCH", `/pipelines/${P}/nodes/b`, { asset: { content: "y".repeat(6_000) } });
    expect(patch.status).toBe(413);
    expect(patch.body).toMatchObject({ limit: "structureBytes", max: 20_000 });
    expect((await call("GET", `/pipelines/${P}/nodes/b`)).body.node.asset.content).toBe("small");

    const before = (await call("GET", "/pipelines?per=100")).body.meta.total_count;
    const imported = await call("POST", "/pipelines/import", doc([textNode("a", "x".repeat(12_000)), textNode("b", "x".repeat(12_000))]));
    expect(imported.status).toBe(413);
    expect(imported.body.error).toMatch(/at most 20000 bytes/);
    expect((await call("GET", "/pipelines?per=100")).body.meta.total_count).toBe(before);
  });

  it("an import with more nodes than the limit is a 422 naming the limit", async () => {
    const res = await call("POST", "/pipelines/import", doc(["a", "b", "c", "d"].map((id) => textNode(id, "x"))));
    expect(res.status).toBe(422);
    expect(res.body.problems).toEqual([
      { path: "nodes", message: "a pipeline has at most 3 nodes; this document has 4", text: "nodes: a pipeline has at most 3 nodes; this document has 4" },
    ]);
  });
});

describe("one field check for every write path", () => {
  it("import refuses a text asset with a url, as POST .../nodes and PATCH do", async () => {
    const bad = { id: "t", title: "t", type: "asset", asset: { type: "text", url: "https://media.example.com/a.txt" } };
    const imported = await call("POST", "/pipelines/import", doc([bad]));
    expect(imported.status).toBe(422);
    expect(imported.body.problems.map((p: { text: string }) => p.text)).toEqual([
      'node "t" asset.url: text assets take inline content or an upload, not a url',
    ]);
    const P = await newPipeline("fields");
    const posted = await call("POST", `/pipelines/${P}/nodes`, bad);
    expect(posted).toMatchObject({ status: 422, body: { error: "asset.url: text assets take inline content or an upload, not a url" } });
    expect((await call("POST", `/pipelines/${P}/nodes`, { id: "v", title: "v", type: "asset", asset: { type: "video" } })).status).toBe(201);
    const patched = await call("PATCH", `/pipelines/${P}/nodes/v`, { asset: { type: "text", url: "https://media.example.com/a.txt" } });
    expect(patched).toMatchObject({ status: 422, body: { error: "asset.url: text assets take inline content or an upload, not a url" } });
    const both = await call("PATCH", `/pipelines/${P}/nodes/v`, { asset: { content: "hi", url: "https://media.example.com/a.mp4" } });
    expect(both).toMatchObject({ status: 422, body: { error: "asset.url: an asset takes content or a url, not both" } });
  });
});

describe("strings Postgres cannot store", () => {
  it("a lone UTF-16 surrogate in config, asset content, a title or an import is a 422, not a 500", async () => {
    const P = await newPipeline("surrogates");
    expect((await call("POST", `/pipelines/${P}/nodes`, textNode("s", "ok"))).status).toBe(201);
    const cases: Array<[string, string, string, RegExp]> = [
      [
        "POST",
        `/pipelines/${P}/nodes`,
        '{"title":"v","type":"generate-voiceover","config":{"script":"hi \\ud800"}}',
        /^config\.script: must not contain a lone UTF-16 surrogate/,
      ],
      [
        "POST",
        `/pipelines/${P}/nodes`,
        '{"title":"t","type":"asset","asset":{"type":"text","content":"\\udc00 tail"}}',
        /^asset\.content: must not contain a lone UTF-16 surrogate/,
      ],
      ["PATCH", `/pipelines/${P}/nodes/s`, '{"asset":{"content":"x\\ud83d"}}', /^asset\.content: /],
      ["PATCH", `/pipelines/${P}/nodes/s`, '{"title":"\\udfff"}', /^title: /],
      ["POST", "/pipelines", '{"title":"p \\ud800"}', /^title: /],
      ["POST", "/pipelines/import", JSON.stringify(doc([textNode("a", "x")])).replace('"x"', '"\\ud800"'), /^nodes\.0\.asset\.content: /],
    ];
    for (const [method, path, body, reason] of cases) {
      const res = await call(method, path, body);
      expect(res.status, `${method} ${path} ${body}`).toBe(422);
      expect(res.body.error).toMatch(reason);
    }
    // A surrogate pair (an emoji) is text like any other.
    const emoji = await call(
      "POST",
      `/pipelines/${P}/nodes`,
      '{"title":"clip \\ud83c\\udfac","type":"asset","asset":{"type":"text","content":"\\ud83d\\ude00"}}',
    );
    expect(emoji.status).toBe(201);
    expect(emoji.body.node.asset.content).toBe("\u{1F600}");
    expect(unhandled()).toEqual([]);
  });
});

describe("token subjects", () => {
  it("a bearer token whose sub is not a string is a 401 on POST .../events/token, not a 500", async () => {
    const P = await newPipeline("sub");
    const now = Math.floor(Date.now() / 1000);
    for (const sub of [42, { id: "u" }]) {
      const token = await new SignJWT({ roles: ["viewer", "editor", "operator"], sub } as Record<string, unknown>)
        .setProtectedHeader({ alg: "HS256", typ: "JWT" })
        .setIssuer(TEST_AUTH.issuer)
        .setAudience(TEST_AUTH.audience)
        .setIssuedAt(now)
        .setExpirationTime(now + 600)
        .sign(new TextEncoder().encode(TEST_AUTH.secret));
      const res = await call("POST", `/pipelines/${P}/events/token`, undefined, token);
      expect(res.status, JSON.stringify(sub)).toBe(401);
      expect(res.body.error).toMatch(/"sub" claim must be a non-empty string/);
    }
    expect(unhandled()).toEqual([]);
  });
});
