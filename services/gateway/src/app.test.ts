/**
 * Gateway routes through `app.request()` against the real Postgres and NATS, with the scheduler and the
 * state-writer running as real processes so execute gets a real verdict: the
 * pipelines and nodes controllers' contract, plus bad-input handling.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type pg from "pg";
import { createPool, roleUrl } from "@vp/db";
import { createLocalStorage } from "@vp/storage";
import { startTestS3 } from "@vp/storage/testing";
import { createLogger, metrics } from "@vp/telemetry";
import {
  createTestBus,
  createTestDatabase,
  insertNodeFixture,
  insertPipelineFixture,
  startStack,
  TEST_AUTH,
  testToken,
  type Stack,
  type TestBus,
  type TestDatabase,
} from "@vp/testkit";
import { createApp } from "./app";
import { createGatewayAuth } from "./auth";

/** The gateway's auth as the testkit's stacks configure it (tokens from testToken()). */
const testAuth = () =>
  createGatewayAuth(
    { mode: "jwt", secret: TEST_AUTH.secret, issuer: TEST_AUTH.issuer, audience: TEST_AUTH.audience, devLogin: false, devLoginTtlSeconds: 3600 },
    createLogger({ service: "gateway-test", level: "warn" }),
  );

let db: TestDatabase;
let bus: TestBus;
let stack: Stack;
let reader: pg.Pool;
let editor: pg.Pool;
let scratch: string;
let app: ReturnType<typeof createApp>;
const MAX_UPLOAD = 64 * 1024;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "vp-gw-"));
  db = await createTestDatabase();
  bus = await createTestBus();
  stack = await startStack({
    databaseAdminUrl: db.adminUrl,
    namespace: bus.topology.namespace,
    storageRoot: join(scratch, "storage"),
    workRoot: join(scratch, "work"),
    services: ["state-writer", "scheduler"],
  });
  reader = createPool({ url: roleUrl(db.adminUrl, "vp_reader"), applicationName: "gw-test-reader" });
  editor = createPool({ url: roleUrl(db.adminUrl, "vp_editor"), applicationName: "gw-test-editor" });
  app = createApp({
    reader,
    editor,
    bus: bus.bus,
    topology: bus.topology,
    storage: createLocalStorage({ root: join(scratch, "storage") }),
    logger: createLogger({ service: "gateway-test", level: "warn" }),
    auth: testAuth(),
    maxUploadBytes: MAX_UPLOAD,
    executeVerdictTimeoutMs: 10_000,
    corsOrigins: ["http://localhost:3065"],
    closing: new Promise(() => {}),
  });
});

afterAll(async () => {
  await stack?.stop();
  await reader?.end();
  await editor?.end();
  await bus?.cleanup();
  await db?.drop();
  await rm(scratch, { recursive: true, force: true });
});

async function call(method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const init: RequestInit = { method, headers: { authorization: `Bearer ${await testToken()}`, ...headers } };
  if (typeof body === "string" || body instanceof Uint8Array) init.body = body as BodyInit;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    (init.headers as Record<string, string>)["content-type"] = "application/json";
  }
  const res = await app.request(`/v1/video_production${path}`, init);
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

async function snapshot() {
  const { rows: pipelines } = await db.admin.query("select * from video_production_pipelines order by id");
  const { rows: nodes } = await db.admin.query("select * from video_production_nodes order by pipeline_id, id");
  return JSON.stringify({ pipelines, nodes });
}

describe("nodes controller", () => {
  it("execute queues a ready pending node and returns its job_id", async () => {
    const pipeline = await insertPipelineFixture(db.admin);
    await insertNodeFixture(db.admin, { pipelineId: pipeline.id, id: "v1", completed: true });
    await insertNodeFixture(db.admin, { pipelineId: pipeline.id, id: "v2", completed: true });
    await insertNodeFixture(db.admin, { pipelineId: pipeline.id, id: "m", type: "merge-videos", inputs: { segments: ["v1", "v2"] } });
    const res = await call("POST", `/pipelines/${pipeline.id}/nodes/m/execute`);
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body).toEqual({ status: "queued", job_id: expect.any(String) });
    const { rows } = await db.admin.query("select status, metadata from video_production_nodes where pipeline_id=$1 and id='m'", [pipeline.id]);
    expect(rows[0].status).toBe("queued");
    expect(rows[0].metadata.jobId).toBe(res.body.job_id);
    // exactly one job on the merge-videos subject
    const info = await bus.bus.jsm.streams.info(bus.topology.streams.jobs.name);
    expect(info.state.messages).toBe(1);
  });

  it("execute returns 422 with the reason when an input is pending", async () => {
    const pipeline = await insertPipelineFixture(db.admin);
    await insertNodeFixture(db.admin, { pipelineId: pipeline.id, id: "v1", completed: true });
    await insertNodeFixture(db.admin, { pipelineId: pipeline.id, id: "v2", status: "pending", asset: { type: "video", source: "x" } });
    await insertNodeFixture(db.admin, { pipelineId: pipeline.id, id: "m", type: "merge-videos", inputs: { segments: ["v1", "v2"] } });
    const res = await call("POST", `/pipelines/${pipeline.id}/nodes/m/execute`);
    expect(res.status).toBe(422);
    expect(res.body).toEqual({ error: "Node not ready (status: pending, inputs satisfied: false)" });
  });

  it.each(["in_progress", "completed"] as const)("execute returns 422 when the node is %s", async (status) => {
    const pipeline = await insertPipelineFixture(db.admin);
    await insertNodeFixture(db.admin, { pipelineId: pipeline.id, id: "n", status, asset: { type: "text", content: "hi" } });
    const res = await call("POST", `/pipelines/${pipeline.id}/nodes/n/execute`);
    expect(res.status).toBe(422);
    expect(res.body.error).toBe(`Node not ready (status: ${status}, inputs satisfied: true)`);
  });

  it("status returns the current state", async () => {
    const pipeline = await insertPipelineFixture(db.admin);
    const startedAt = new Date().toISOString();
    await insertNodeFixture(db.admin, { pipelineId: pipeline.id, id: "n", status: "in_progress", metadata: { startedAt } });
    const res = await call("GET", `/pipelines/${pipeline.id}/nodes/n/status`);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ id: "n", status: "in_progress", metadata: { startedAt }, output: {} });
  });

  it("returns 404 for an unknown pipeline or node", async () => {
    const pipeline = await insertPipelineFixture(db.admin);
    expect(await call("POST", `/pipelines/nope/nodes/n/execute`)).toEqual({ status: 404, body: { error: "Pipeline not found" } });
    expect(await call("POST", `/pipelines/${pipeline.id}/nodes/nope/execute`)).toEqual({ status: 404, body: { error: "Node not found" } });
    expect(await call("GET", `/pipelines/nope/nodes/n/status`)).toEqual({ status: 404, body: { error: "Pipeline not found" } });
    expect(await call("GET", `/pipelines/${pipeline.id}/nodes/nope`)).toEqual({ status: 404, body: { error: "Node not found" } });
    expect(await call("GET", `/pipelines/nope`)).toEqual({ status: 404, body: { error: "Pipeline not found" } });
  });
});

describe("pipelines controller", () => {
  it("lists pipelines paginated, most recently updated first, with the API's shapes", async () => {
    const created = [];
    for (let i = 0; i < 3; i++) created.push((await call("POST", "/pipelines", { title: `List ${i}` })).body.pipeline);
    await call("PATCH", `/pipelines/${created[0].id}`, { title: "List 0 renamed" });
    const page1 = await call("GET", "/pipelines?page=1&per=2");
    expect(page1.status).toBe(200);
    expect(page1.body.pipelines).toHaveLength(2);
    expect(page1.body.pipelines[0]).toMatchObject({ id: created[0].id, title: "List 0 renamed", version: "1.0", config: {}, metadata: expect.any(Object) });
    expect(Object.keys(page1.body.pipelines[0]).sort()).toEqual([
      "config",
      "created_at",
      "id",
      "metadata",
      "node_counts",
      "revision",
      "title",
      "updated_at",
      "variables",
      "version",
    ]);
    expect(page1.body.pipelines[0].node_counts).toEqual({ total: 0, pending: 0, queued: 0, in_progress: 0, completed: 0, failed: 0, cancelled: 0 });
    expect(page1.body.meta).toEqual({ current_page: 1, total_pages: Math.ceil(page1.body.meta.total_count / 2), total_count: expect.any(Number) });
    expect((await call("GET", "/pipelines?per=0")).status).toBe(422);
  });

  it("shows a pipeline with its nodes serialized", async () => {
    const { pipeline } = (await call("POST", "/pipelines", { title: "Show" })).body;
    const created = await call("POST", `/pipelines/${pipeline.id}/nodes`, {
      id: "s",
      title: "Script",
      type: "asset",
      asset: { type: "text", content: "Hello" },
    });
    expect(created.status).toBe(201);
    const res = await call("GET", `/pipelines/${pipeline.id}`);
    expect(res.body.pipeline.nodes).toEqual([
      {
        id: "s",
        pipeline_id: pipeline.id,
        title: "Script",
        type: "asset",
        inputs: {},
        config: {},
        asset: { type: "text", content: "Hello" },
        status: "pending",
        metadata: null,
        output: null,
        position: null,
        disabled: false,
        revision: 1,
      },
    ]);
    expect(res.body.pipeline.revision).toBe(1);
    expect((await call("GET", `/pipelines/${pipeline.id}/nodes`)).body.nodes).toHaveLength(1);
  });
});

describe("bad input gets a clear 4xx and changes nothing", () => {
  let pipelineId: string;
  beforeAll(async () => {
    const pipeline = await insertPipelineFixture(db.admin);
    pipelineId = pipeline.id;
    await insertNodeFixture(db.admin, { pipelineId, id: "v1", completed: true });
    await insertNodeFixture(db.admin, { pipelineId, id: "au", type: "asset", asset: { type: "audio", source: "k" } });
    await insertNodeFixture(db.admin, { pipelineId, id: "broken", status: "completed", asset: { type: "video" }, output: null });
    await insertNodeFixture(db.admin, { pipelineId, id: "one", type: "merge-videos", inputs: { segments: ["v1"] } });
    await insertNodeFixture(db.admin, { pipelineId, id: "hole", type: "merge-videos", inputs: { segments: ["v1", "broken"] } });
  });

  const cases: Array<[string, string, string, unknown, number, RegExp]> = [
    ["unknown node type", "POST", "/nodes", { title: "x", type: "make-coffee" }, 422, /type: Invalid option/],
    [
      "inputs naming a missing node",
      "POST",
      "/nodes",
      { title: "x", type: "merge-videos", inputs: { segments: ["v1", "ghost"] } },
      422,
      /node "ghost", which does not exist/,
    ],
    [
      "an input of the wrong media type",
      "POST",
      "/nodes",
      { title: "x", type: "merge-videos", inputs: { segments: ["v1", "au"] } },
      422,
      /accepts video, but "Test Node" \(au\) produces audio/,
    ],
    ["an unknown input slot", "POST", "/nodes", { title: "x", type: "merge-videos", inputs: { clips: ["v1"] } }, 422, /no input "clips"/],
    ["an unknown config key", "POST", "/nodes", { title: "x", type: "merge-videos", config: { shell: "rm -rf /" } }, 422, /config: .*Unrecognized key/],
    ["an unknown field", "POST", "/nodes", { title: "x", type: "asset", asset: { type: "video" }, owner: "me" }, 422, /Unrecognized key/],
    ["a wrong type", "POST", "/nodes", { title: 42, type: "asset", asset: { type: "video" } }, 422, /title/],
    [
      "a client-chosen storage source",
      "POST",
      "/nodes",
      { title: "x", type: "asset", asset: { type: "video", source: "/etc/passwd" } },
      422,
      /Unrecognized key/,
    ],
    ["a path-like id", "POST", "/nodes", { id: "../../etc/passwd", title: "x", type: "asset", asset: { type: "video" } }, 422, /id: must be/],
    ["a path-like title", "POST", "/nodes", { title: "../../etc/passwd", type: "asset", asset: { type: "video" } }, 422, /path traversal/],
    ["a path-like pipeline title", "POST", "", { title: "../../etc/passwd" }, 422, /path traversal/],
    ["a path-like storage prefix", "POST", "", { title: "ok", config: { storage: { prefix: "../../etc" } } }, 422, /prefix/],
    ["merge-videos with one segment", "POST", "/nodes/one/execute", undefined, 422, /needs at least 2 node\(s\), got 1/],
    ["a segment whose output is missing", "POST", "/nodes/hole/execute", undefined, 422, /"Test Node" \(broken\) is completed but has no output/],
  ];

  it.each(cases)("%s", async (_name, method, suffix, body, status, message) => {
    const before = await snapshot();
    const path = suffix === "" ? "/pipelines" : `/pipelines/${pipelineId}${suffix}`;
    const res = await call(method, path, body);
    expect(res.status, JSON.stringify(res.body)).toBe(status);
    expect(res.body.error).toMatch(message);
    expect(await snapshot()).toBe(before);
  });

  it("malformed JSON", async () => {
    const before = await snapshot();
    const res = await call("POST", `/pipelines/${pipelineId}/nodes`, "{ not json", { "content-type": "application/json" });
    expect(res.status).toBe(400);
    expect(res.body.error).toMatch(/^Malformed JSON body/);
    expect(await snapshot()).toBe(before);
  });

  it("a JSON body over the limit", async () => {
    const before = await snapshot();
    const res = await call("POST", `/pipelines/${pipelineId}/nodes`, JSON.stringify({ title: "x".repeat(2 * 1024 * 1024) }), {
      "content-type": "application/json",
    });
    expect(res.status).toBe(413);
    expect(await snapshot()).toBe(before);
  });

  it("an oversized upload is refused and nothing is stored", async () => {
    await insertNodeFixture(db.admin, { pipelineId, id: "up", type: "asset", asset: { type: "video" } });
    const before = await snapshot();
    const big = new Uint8Array(MAX_UPLOAD + 1);
    const res = await call("PUT", `/pipelines/${pipelineId}/nodes/up/asset`, big, { "content-type": "video/mp4" });
    expect(res.status).toBe(413);
    expect(res.body.error).toMatch(/limit/);
    expect(await snapshot()).toBe(before);
    const { readdir } = await import("node:fs/promises");
    const dir = join(scratch, "storage", "pipelines", pipelineId, "nodes", "up", "asset");
    expect(await readdir(dir).catch(() => [])).toEqual([]);
  });

  it("path-like ids in the URL are not found, never resolved", async () => {
    const res = await call("GET", `/pipelines/${encodeURIComponent("../../etc/passwd")}/nodes/x`);
    expect(res.status).toBe(404);
    expect((await call("GET", `/pipelines/${pipelineId}/nodes/..%2F..%2Fetc%2Fpasswd/output`)).status).toBe(404);
  });
});

describe("shutdown", () => {
  it("ends SSE streams with a retry hint when the gateway closes, and counts open streams", async () => {
    let close!: () => void;
    const closing = new Promise<void>((resolve) => (close = resolve));
    const closingApp = createApp({
      reader,
      editor,
      bus: bus.bus,
      topology: bus.topology,
      storage: createLocalStorage({ root: join(scratch, "storage") }),
      logger: createLogger({ service: "gateway-test", level: "warn" }),
      auth: testAuth(),
      maxUploadBytes: MAX_UPLOAD,
      executeVerdictTimeoutMs: 10_000,
      corsOrigins: [],
      closing,
    });
    const { body } = await call("POST", "/pipelines", { title: "closing" });
    const open = async () => (await metrics.sseConnections.get()).values[0]?.value ?? 0;
    const before = await open();
    const minted = await call("POST", `/pipelines/${body.pipeline.id}/events/token`);
    const res = await closingApp.request(`/v1/video_production/pipelines/${body.pipeline.id}/events?token=${minted.body.token}`);
    expect(res.status).toBe(200);
    const stream = res.body!.getReader();
    const decoder = new TextDecoder();
    let text = "";
    while (!text.includes("event: snapshot")) text += decoder.decode((await stream.read()).value, { stream: true });
    // The stream is counted once it is live.
    for (let i = 0; i < 50 && (await open()) !== before + 1; i++) await new Promise((r) => setTimeout(r, 20));
    expect(await open()).toBe(before + 1);
    close();
    for (;;) {
      const { value, done } = await stream.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    expect(text.trimEnd().endsWith("retry: 1000")).toBe(true);
    expect(await open()).toBe(before);
  });
});

describe("output delivery by presigned storage URL", () => {
  it("after the role check, an output is a 302 to a short-lived presigned S3 URL the browser reads (ranges included); no role, no URL", async () => {
    const s3 = await startTestS3();
    try {
      const storage = s3.storage("delivery");
      const presigned = createApp({
        reader,
        editor,
        bus: bus.bus,
        topology: bus.topology,
        storage,
        logger: createLogger({ service: "gateway-test", level: "warn" }),
        auth: testAuth(),
        maxUploadBytes: MAX_UPLOAD,
        executeVerdictTimeoutMs: 10_000,
        corsOrigins: ["http://localhost:3065"],
        outputDelivery: { mode: "presigned", expiresInSeconds: 120 },
        closing: new Promise(() => {}),
      });
      const pipeline = await insertPipelineFixture(db.admin);
      const key = `pipelines/${pipeline.id}/nodes/clip/job-1-a1/output.mp4`;
      const bytes = Buffer.from(Array.from({ length: 4096 }, (_, i) => i % 251));
      await storage.put(key, bytes, { contentType: "video/mp4" });
      await insertNodeFixture(db.admin, {
        pipelineId: pipeline.id,
        id: "clip",
        status: "completed",
        output: { type: "video", s3Key: key, contentType: "video/mp4", size: bytes.length },
      });

      const path = `/v1/video_production/pipelines/${pipeline.id}/nodes/clip/output`;
      const res = await presigned.request(path, { headers: { authorization: `Bearer ${await testToken()}` } });
      expect(res.status).toBe(302);
      expect(res.headers.get("cache-control")).toBe("private, no-store");
      const location = new URL(res.headers.get("location")!);
      expect(location.searchParams.get("X-Amz-Expires")).toBe("120");
      expect(location.searchParams.get("response-content-type")).toBe("video/mp4");
      const whole = await fetch(location);
      expect(Buffer.from(await whole.arrayBuffer()).equals(bytes)).toBe(true);
      const part = await fetch(location, { headers: { range: "bytes=100-199" } });
      expect(part.status).toBe(206);
      expect(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(100, 200))).toBe(true);

      expect((await presigned.request(path)).status).toBe(401);
    } finally {
      await s3.close();
    }
  });
});

describe("an uploaded file", () => {
  it("keeps its name with the asset (a base name, checked) and is served back at .../asset, ranges included", async () => {
    const { body } = await call("POST", "/pipelines", { title: "Named upload" });
    const P = body.pipeline.id as string;
    await insertNodeFixture(db.admin, { pipelineId: P, id: "clip", type: "asset", asset: { type: "video" } });
    const bytes = new Uint8Array(2000).map((_, i) => i % 251);
    const put = (name?: string) =>
      call("PUT", `/pipelines/${P}/nodes/clip/asset${name === undefined ? "" : `?name=${encodeURIComponent(name)}`}`, bytes, { "content-type": "video/mp4" });

    // A path, a control character or an overlong name is refused before anything is stored.
    for (const name of ["../../etc/passwd", "C:\\clips\\a.mp4", "a\u0007.mp4", `${"a".repeat(252)}.mp4`]) {
      const refused = await put(name);
      expect(refused.status, name).toBe(422);
      expect(refused.body.error).toMatch(/^name: /);
    }
    const named = await put("Launch teaser <final>.mp4");
    expect(named.status).toBe(200);
    expect(named.body.node.asset).toMatchObject({ type: "video", name: "Launch teaser <final>.mp4", size: 2000, contentType: "video/mp4" });

    const res = await app.request(`/v1/video_production/pipelines/${P}/nodes/clip/asset`, {
      headers: { authorization: `Bearer ${await testToken()}`, range: "bytes=10-19" },
    });
    expect(res.status).toBe(206);
    expect(res.headers.get("content-type")).toBe("video/mp4");
    expect(res.headers.get("x-content-type-options")).toBe("nosniff");
    expect(new Uint8Array(await res.arrayBuffer())).toEqual(bytes.slice(10, 20));

    // Replaced without a name: the old name goes with the old file.
    expect((await put()).body.node.asset.name).toBeNull();
    // A node without an uploaded file has nothing to serve.
    await insertNodeFixture(db.admin, { pipelineId: P, id: "note", type: "asset", asset: { type: "text", content: "hi" } });
    const none = await app.request(`/v1/video_production/pipelines/${P}/nodes/note/asset`, { headers: { authorization: `Bearer ${await testToken()}` } });
    expect(none.status).toBe(404);
  });
});
