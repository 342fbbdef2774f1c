/**
 * Structure revisions through the HTTP API, against real Postgres and NATS, with two gateway replicas: a write
 * through one reaches the other's open event stream as a `structure` frame; a write based on an older revision
 * of a node gets 409 with the current node; the history lists, shows and restores revisions.
 */
import { mkdtemp, rm } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { serve, type ServerType } from "@hono/node-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signAccessToken, type Role } from "@vp/auth";
import { createLogger } from "@vp/telemetry";
import { createTestBus, createTestDatabase, TEST_AUTH, type TestBus, type TestDatabase } from "@vp/testkit";
import { testApp } from "../test-app";

const ROOT = "/v1/video_production";

let db: TestDatabase;
let bus: TestBus;
let scratch: string;
const servers: ServerType[] = [];
const streams: AbortController[] = [];
const logger = createLogger({ service: "gateway-revisions-test", level: "warn" });

beforeAll(async () => {
  db = await createTestDatabase();
  bus = await createTestBus();
  scratch = await mkdtemp(join(tmpdir(), "vp-revisions-"));
});

afterAll(async () => {
  for (const s of streams) s.abort();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  await bus?.cleanup();
  await db?.drop();
  if (scratch) await rm(scratch, { recursive: true, force: true });
});

/** One gateway replica on a real HTTP server; all replicas share the database and the bus. */
async function replica(): Promise<string> {
  const app = testApp({ reader: db.pools.reader, editor: db.pools.editor, bus, scratch, logger });
  const server = await new Promise<ServerType>((resolve) => {
    const s = serve({ fetch: app.fetch, port: 0, hostname: "127.0.0.1" }, () => resolve(s));
  });
  servers.push(server);
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}${ROOT}`;
}

const jwt = (subject: string, roles: Role[] = ["viewer", "editor", "operator"]) =>
  signAccessToken({ secret: TEST_AUTH.secret, issuer: TEST_AUTH.issuer, audience: TEST_AUTH.audience, subject, roles, ttlSeconds: 600 });

async function call(base: string, method: string, path: string, options: { as?: string; body?: unknown; headers?: Record<string, string> } = {}) {
  const headers: Record<string, string> = { authorization: `Bearer ${await jwt(options.as ?? "ana")}`, ...options.headers };
  if (options.body !== undefined) headers["content-type"] = "application/json";
  const res = await fetch(`${base}${path}`, { method, headers, body: options.body === undefined ? undefined : JSON.stringify(options.body) });
  const text = await res.text();
  return { status: res.status, etag: res.headers.get("etag"), body: text ? JSON.parse(text) : undefined };
}

/** An open event stream of the pipeline: its frames as they arrive. */
async function openStream(base: string, pipelineId: string, lastEventId?: string) {
  const { body } = await call(base, "POST", `/pipelines/${pipelineId}/events/token`);
  const query = new URLSearchParams({ token: body.token, ...(lastEventId ? { lastEventId } : {}) });
  const abort = new AbortController();
  streams.push(abort);
  const res = await fetch(`${base}/pipelines/${pipelineId}/events?${query}`, { signal: abort.signal });
  let text = "";
  void (async () => {
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) text += decoder.decode(chunk, { stream: true });
    } catch {
      // aborted
    }
  })();
  const frames = () =>
    text
      .split("\n\n")
      .slice(0, -1)
      .map((block) => {
        const frame: Record<string, string> = {};
        for (const line of block.split("\n")) {
          const i = line.indexOf(":");
          if (i > 0) frame[line.slice(0, i)] = line.slice(i + 1).trimStart();
        }
        return frame;
      })
      .filter((f) => f.event);
  return {
    frames,
    structure: () =>
      frames()
        .filter((f) => f.event === "structure")
        .map((f) => JSON.parse(f.data!)),
    async waitFor(predicate: () => boolean, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      while (!predicate()) {
        if (Date.now() > deadline) throw new Error(`stream condition not met in ${timeoutMs} ms; got:\n${text.slice(-2000)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    },
    close: () => abort.abort(),
  };
}

describe("structure revisions over HTTP", () => {
  it("announces a write made through one replica on the other replica's open stream, with who made it", async () => {
    const [a, b] = [await replica(), await replica()];
    const { body: created } = await call(a, "POST", "/pipelines", { body: { title: "Two tabs" } });
    const P = created.pipeline.id as string;
    const stream = await openStream(b, P);
    await stream.waitFor(() => stream.frames().some((f) => f.event === "snapshot"));
    expect(JSON.parse(stream.frames()[0]!.data!).pipeline.revision).toBe(0);

    const added = await call(a, "POST", `/pipelines/${P}/nodes`, {
      as: "ana",
      headers: { "x-vp-client": "tab-1" },
      body: { id: "voice", title: "Voice", type: "generate-voiceover" },
    });
    expect(added.status).toBe(201);
    expect(added.etag).toBe('"1"');
    await call(a, "PATCH", `/pipelines/${P}/nodes/voice`, { as: "ben", body: { config: { speed: 1.25 } } });
    await call(a, "PATCH", `/pipelines/${P}`, { as: "ana", body: { title: "Two tabs, renamed" } });
    await call(a, "DELETE", `/pipelines/${P}/nodes/voice`, { as: "ben" });
    await stream.waitFor(() => stream.structure().length === 4);
    const [add, change, rename, remove] = stream.structure();
    expect(add).toMatchObject({
      kind: "structure",
      pipelineId: P,
      revision: 1,
      by: "ana",
      client: "tab-1",
      nodes: [{ id: "voice", node: { title: "Voice", revision: 1 } }],
    });
    expect(change.client).toBeUndefined();
    expect(change).toMatchObject({ revision: 2, by: "ben", nodes: [{ id: "voice", node: { config: { speed: 1.25 }, revision: 2 } }] });
    expect(rename).toMatchObject({ revision: 3, by: "ana", pipeline: { title: "Two tabs, renamed" }, nodes: [] });
    expect(remove).toMatchObject({ revision: 4, by: "ben", nodes: [{ id: "voice", node: null }] });
    stream.close();
  });

  it("tells a resuming stream the current revision so a client that missed changes reloads", async () => {
    const base = await replica();
    const { body: created } = await call(base, "POST", "/pipelines", { body: { title: "Resume" } });
    const P = created.pipeline.id as string;
    const first = await openStream(base, P);
    await first.waitFor(() => first.frames().some((f) => f.event === "snapshot"));
    const lastId = first.frames()[0]!.id!;
    first.close();
    await call(base, "POST", `/pipelines/${P}/nodes`, { body: { id: "a", title: "A", type: "asset", asset: { type: "text", content: "hi" } } });
    const resumed = await openStream(base, P, lastId);
    await resumed.waitFor(() => resumed.frames().some((f) => f.event === "revision"));
    expect(resumed.frames().some((f) => f.event === "snapshot")).toBe(false);
    expect(JSON.parse(resumed.frames().find((f) => f.event === "revision")!.data!)).toEqual({ revision: 1 });
    resumed.close();
  });

  it("refuses a write based on an older revision of the node with 409 and the node as it is now", async () => {
    const base = await replica();
    const { body: created } = await call(base, "POST", "/pipelines", { body: { title: "Conflict" } });
    const P = created.pipeline.id as string;
    await call(base, "POST", `/pipelines/${P}/nodes`, { body: { id: "vo", title: "V", type: "generate-voiceover", config: { speed: 1 } } });
    const shown = await call(base, "GET", `/pipelines/${P}/nodes/vo`);
    expect(shown.etag).toBe('"1"');
    const tabA = await call(base, "PATCH", `/pipelines/${P}/nodes/vo`, { as: "ana", headers: { "if-match": shown.etag! }, body: { config: { speed: 1.5 } } });
    expect(tabA.status).toBe(200);
    expect(tabA.etag).toBe('"2"');
    const tabB = await call(base, "PATCH", `/pipelines/${P}/nodes/vo`, { as: "ben", headers: { "if-match": shown.etag! }, body: { config: { speed: 0.5 } } });
    expect(tabB.status).toBe(409);
    expect(tabB.body.error).toBe('"V" was changed by ana since you loaded it; your change was not saved');
    expect(tabB.body).toMatchObject({ revision: 2, by: "ana", node: { id: "vo", config: { speed: 1.5 }, revision: 2 } });
    expect((await call(base, "GET", `/pipelines/${P}/nodes/vo`)).body.node.config).toEqual({ speed: 1.5 });
    expect((await call(base, "DELETE", `/pipelines/${P}/nodes/vo`, { headers: { "if-match": '"1"' } })).status).toBe(409);
    expect((await call(base, "PATCH", `/pipelines/${P}/nodes/vo`, { headers: { "if-match": "yesterday" }, body: { title: "X" } })).status).toBe(400);
    expect((await call(base, "DELETE", `/pipelines/${P}/nodes/vo`, { headers: { "if-match": 'W/"2"' } })).status).toBe(204);
  });

  it("lists, shows and restores revisions; the restore is a new revision and reaches open streams", async () => {
    const base = await replica();
    const { body: created } = await call(base, "POST", "/pipelines", { body: { title: "History" } });
    const P = created.pipeline.id as string;
    for (const [as, method, path, body] of [
      ["ana", "POST", "nodes", { id: "script", title: "Script", type: "asset", asset: { type: "text", content: "Hello" } }],
      ["ana", "POST", "nodes", { id: "voice", title: "Voice", type: "generate-voiceover", inputs: { script: ["script"] } }],
      ["ana", "POST", "nodes", { id: "extra", title: "Extra", type: "asset", asset: { type: "text", content: "More" } }],
      ["ben", "PATCH", "nodes/script", { asset: { content: "Goodbye" } }],
      ["ben", "DELETE", "nodes/extra", undefined],
    ] as const) {
      const res = await call(base, method, `/pipelines/${P}/${path}`, { as, body });
      expect(res.status, JSON.stringify(res.body)).toBeLessThan(300);
    }

    const history = await call(base, "GET", `/pipelines/${P}/revisions?limit=3`);
    expect(history.status).toBe(200);
    expect(history.body.current).toBe(5);
    expect(history.body.revisions.map((r: { revision: number; created_by: string; summary: string }) => [r.revision, r.created_by, r.summary])).toEqual([
      [5, "ben", "Removed Extra"],
      [4, "ben", "Changed content of Script"],
      [3, "ana", "Added Extra"],
    ]);
    expect((await call(base, "GET", `/pipelines/${P}/revisions?before=3`)).body.revisions.map((r: { revision: number }) => r.revision)).toEqual([2, 1]);

    const old = await call(base, "GET", `/pipelines/${P}/revisions/2`);
    expect(old.body.revision).toMatchObject({ revision: 2, created_by: "ana", summary: "Added Voice" });
    expect(old.body.nodes.map((n: { id: string }) => n.id)).toEqual(["script", "voice"]);
    expect(old.body.nodes.find((n: { id: string }) => n.id === "script").asset).toEqual({ type: "text", content: "Hello" });
    expect((await call(base, "GET", `/pipelines/${P}/revisions/9`)).status).toBe(404);
    expect((await call(base, "GET", `/pipelines/${P}/revisions/x`)).status).toBe(404);

    const stream = await openStream(base, P);
    await stream.waitFor(() => stream.frames().some((f) => f.event === "snapshot"));
    const restored = await call(base, "POST", `/pipelines/${P}/revisions/3/restore`, { as: "cy" });
    expect(restored.status).toBe(200);
    expect(restored.body.revision).toBe(6);
    const nodes = Object.fromEntries(restored.body.pipeline.nodes.map((n: { id: string }) => [n.id, n]));
    expect(nodes.script).toMatchObject({ asset: { type: "text", content: "Hello" }, revision: 6 });
    expect(nodes.extra).toMatchObject({ asset: { type: "text", content: "More" }, status: "pending", revision: 6 });
    expect(nodes.voice).toMatchObject({ inputs: { script: ["script"] }, revision: 2 });
    await stream.waitFor(() => stream.structure().length === 1);
    expect(stream.structure()[0]).toMatchObject({ revision: 6, by: "cy" });
    expect(
      stream
        .structure()[0]
        .nodes.map((n: { id: string }) => n.id)
        .sort(),
    ).toEqual(["extra", "script"]);
    expect((await call(base, "GET", `/pipelines/${P}/revisions?limit=1`)).body.revisions[0]).toMatchObject({
      revision: 6,
      created_by: "cy",
      summary: "Restored revision 3",
    });
    expect((await call(base, "POST", `/pipelines/${P}/revisions/6/restore`)).status).toBe(409);

    // A viewer reads the history but cannot restore.
    const viewer = { authorization: `Bearer ${await jwt("val", ["viewer"])}` };
    expect((await fetch(`${base}/pipelines/${P}/revisions`, { headers: viewer })).status).toBe(200);
    expect((await fetch(`${base}/pipelines/${P}/revisions/1/restore`, { method: "POST", headers: viewer })).status).toBe(403);
    stream.close();
  });
});
