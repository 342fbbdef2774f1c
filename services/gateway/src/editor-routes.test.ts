/**
 * The routes the editor adds to the gateway, through `app.request()` on the real Postgres and NATS:
 * node positions, config keys removed with null, pipeline node counts, the SSE snapshot's state versions,
 * and pipeline as code (export, import with every problem listed, all-or-nothing creation).
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type pg from "pg";
import { PIPELINE_DOCUMENT_FORMAT } from "@vp/contracts";
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
import { createGatewayAuth } from "./auth";

/** The gateway's auth as the testkit's stacks configure it (tokens from testToken()). */
const testAuth = () =>
  createGatewayAuth(
    { mode: "jwt", secret: TEST_AUTH.secret, issuer: TEST_AUTH.issuer, audience: TEST_AUTH.audience, devLogin: false, devLoginTtlSeconds: 3600 },
    createLogger({ service: "gateway-test", level: "warn" }),
  );

let db: TestDatabase;
let bus: TestBus;
let reader: pg.Pool;
let editor: pg.Pool;
let scratch: string;
let app: ReturnType<typeof createApp>;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "vp-gw-ed-"));
  db = await createTestDatabase();
  bus = await createTestBus();
  reader = createPool({ url: roleUrl(db.adminUrl, "vp_reader"), applicationName: "gw-ed-test-reader" });
  editor = createPool({ url: roleUrl(db.adminUrl, "vp_editor"), applicationName: "gw-ed-test-editor" });
  app = createApp({
    reader,
    editor,
    bus: bus.bus,
    topology: bus.topology,
    storage: createLocalStorage({ root: join(scratch, "storage") }),
    logger: createLogger({ service: "gateway-test", level: "warn" }),
    auth: testAuth(),
    maxUploadBytes: 1024 * 1024,
    executeVerdictTimeoutMs: 5_000,
    corsOrigins: ["http://localhost:3065"],
    closing: new Promise(() => {}),
  });
});

afterAll(async () => {
  await reader?.end();
  await editor?.end();
  await bus?.cleanup();
  await db?.drop();
  await rm(scratch, { recursive: true, force: true });
});

async function call(method: string, path: string, body?: unknown) {
  const init: RequestInit = { method, headers: { authorization: `Bearer ${await testToken()}` } };
  if (typeof body === "string") {
    init.body = body;
    (init.headers as Record<string, string>)["content-type"] = "application/json";
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    (init.headers as Record<string, string>)["content-type"] = "application/json";
  }
  const res = await app.request(`/v1/video_production${path}`, init);
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined, headers: res.headers };
}

async function row(pipelineId: string, nodeId: string) {
  const { rows } = await db.admin.query("select * from video_production_nodes where pipeline_id = $1 and id = $2", [pipelineId, nodeId]);
  return rows[0];
}

describe("node positions", () => {
  it("are saved on create and on move, in their own column: config and execution state are untouched", async () => {
    const { pipeline } = (await call("POST", "/pipelines", { title: "Positions" })).body;
    const created = await call("POST", `/pipelines/${pipeline.id}/nodes`, {
      id: "m",
      title: "Merge",
      type: "merge-videos",
      config: { reencode: "always" },
      position: { x: 120, y: 40.5 },
    });
    expect(created.status, JSON.stringify(created.body)).toBe(201);
    expect(created.body.node.position).toEqual({ x: 120, y: 40.5 });

    await insertNodeFixture(db.admin, {
      pipelineId: pipeline.id,
      id: "run",
      type: "merge-videos",
      status: "in_progress",
      metadata: { jobId: "j", progress: 30 },
    });
    const moved = await call("PATCH", `/pipelines/${pipeline.id}/nodes/run`, { position: { x: 5, y: 6 } });
    expect(moved.status).toBe(200);
    expect(await row(pipeline.id, "run")).toMatchObject({
      position: { x: 5, y: 6 },
      config: {},
      status: "in_progress",
      metadata: { jobId: "j", progress: 30 },
    });

    expect((await call("PATCH", `/pipelines/${pipeline.id}/nodes/m`, { position: { x: "left", y: 0 } })).status).toBe(422);
    expect((await call("PATCH", `/pipelines/${pipeline.id}/nodes/m`, { position: { x: 1 } })).status).toBe(422);
    expect((await row(pipeline.id, "m")).position).toEqual({ x: 120, y: 40.5 });
  });
});

describe("config merge patch", () => {
  it("removes a key set to null and still validates the others", async () => {
    const { pipeline } = (await call("POST", "/pipelines", { title: "Config" })).body;
    await call("POST", `/pipelines/${pipeline.id}/nodes`, { id: "m", title: "Merge", type: "merge-videos", config: { reencode: "always", width: 640 } });
    const res = await call("PATCH", `/pipelines/${pipeline.id}/nodes/m`, { config: { width: null, fps: 25 } });
    expect(res.status, JSON.stringify(res.body)).toBe(200);
    expect(res.body.node.config).toEqual({ reencode: "always", fps: 25 });
    const bad = await call("PATCH", `/pipelines/${pipeline.id}/nodes/m`, { config: { reencode: null, fps: 0 } });
    expect(bad.status).toBe(422);
    expect(bad.body.error).toMatch(/^config: fps: Too small/);
    expect((await row(pipeline.id, "m")).config).toEqual({ reencode: "always", fps: 25 });
  });
});

describe("asset media type changes", () => {
  it("are refused when a downstream slot would no longer accept the asset", async () => {
    const { pipeline } = (await call("POST", "/pipelines", { title: "Types" })).body;
    for (const id of ["a", "b"]) await call("POST", `/pipelines/${pipeline.id}/nodes`, { id, title: `Clip ${id}`, type: "asset", asset: { type: "video" } });
    await call("POST", `/pipelines/${pipeline.id}/nodes`, { id: "m", title: "Merge", type: "merge-videos", inputs: { segments: ["a", "b"] } });
    const res = await call("PATCH", `/pipelines/${pipeline.id}/nodes/a`, { asset: { type: "audio" } });
    expect(res.status).toBe(422);
    // Nodes by title, the id after it; the problem's node id stays a field of its own.
    expect(res.body.error).toBe('"Merge" (m).segments: input "segments" accepts video, but "Clip a" (a) produces audio');
    expect(res.body.problems).toEqual([{ nodeId: "m", slot: "segments", message: 'input "segments" accepts video, but "Clip a" (a) produces audio' }]);
    expect((await row(pipeline.id, "a")).asset).toEqual({ type: "video" });
    await call("POST", `/pipelines/${pipeline.id}/nodes`, { id: "free", title: "free", type: "asset", asset: { type: "video" } });
    expect((await call("PATCH", `/pipelines/${pipeline.id}/nodes/free`, { asset: { type: "audio" } })).status).toBe(200);
  });
});

describe("pipeline list", () => {
  it("counts each pipeline's nodes by status", async () => {
    const pipeline = await insertPipelineFixture(db.admin, { title: "Counted" });
    await insertNodeFixture(db.admin, { pipelineId: pipeline.id, id: "a", completed: true });
    await insertNodeFixture(db.admin, { pipelineId: pipeline.id, id: "b", status: "in_progress" });
    await insertNodeFixture(db.admin, { pipelineId: pipeline.id, id: "c" });
    const res = await call("GET", "/pipelines?per=100");
    const listed = res.body.pipelines.find((p: { id: string }) => p.id === pipeline.id);
    expect(listed.node_counts).toEqual({ total: 3, pending: 1, queued: 0, in_progress: 1, completed: 1, failed: 0, cancelled: 0 });
  });
});

describe("SSE snapshot", () => {
  it("carries each node's stateVersion", async () => {
    const pipeline = await insertPipelineFixture(db.admin, { title: "Snap" });
    await insertNodeFixture(db.admin, { pipelineId: pipeline.id, id: "a", completed: true, state_version: 7 });
    const minted = await call("POST", `/pipelines/${pipeline.id}/events/token`);
    const res = await app.request(`/v1/video_production/pipelines/${pipeline.id}/events?token=${minted.body.token}`);
    expect(res.headers.get("content-type")).toMatch(/text\/event-stream/);
    const reader = res.body!.getReader();
    let text = "";
    while (!text.includes("\n\n")) text += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    expect(text).toMatch(/^event: snapshot$/m);
    const data = JSON.parse(/^data: (.*)$/m.exec(text)![1]!);
    expect(data.stateVersions).toEqual({ a: 7 });
    expect(data.pipeline.nodes[0]).toMatchObject({ id: "a", status: "completed", position: null });
  });
});

describe("pipeline as code", () => {
  it("exports structure only and imports it as a new pipeline with the same graph", async () => {
    const { pipeline } = (await call("POST", "/pipelines", { title: "Show: 1/2" })).body;
    const p = `/pipelines/${pipeline.id}/nodes`;
    await call("POST", p, { id: "script", title: "Script", type: "asset", asset: { type: "text", content: "Hello there" }, position: { x: 0, y: 0 } });
    await call("POST", p, { id: "clip", title: "Clip", type: "asset", asset: { type: "video" }, position: { x: 0, y: 200 } });
    await call("POST", p, { id: "clip2", title: "Clip 2", type: "asset", asset: { type: "video" } });
    await call("POST", p, { id: "voice", title: "Voice", type: "generate-voiceover", inputs: { script: ["script"] }, config: { speed: 1.25 } });
    await call("POST", p, {
      id: "merge",
      title: "Merge",
      type: "merge-videos",
      inputs: { segments: ["clip2", "clip"] },
      config: { reencode: "always" },
      position: { x: 400, y: 100 },
    });
    // An uploaded file's storage key must not leave the system.
    await db.admin.query(`update video_production_nodes set asset = asset || '{"source":"pipelines/x/nodes/clip/asset/k.mp4","size":9}' where id = 'clip'`);

    const exported = await call("GET", `/pipelines/${pipeline.id}/export`);
    expect(exported.status).toBe(200);
    expect(exported.headers.get("content-disposition")).toBe('attachment; filename="show-1-2.pipeline.json"');
    expect(JSON.stringify(exported.body)).not.toMatch(/k\.mp4|"source"|"status"/);
    expect(exported.body).toEqual({
      format: PIPELINE_DOCUMENT_FORMAT,
      version: 1,
      title: "Show: 1/2",
      nodes: [
        { id: "script", title: "Script", type: "asset", inputs: {}, config: {}, asset: { type: "text", content: "Hello there" }, position: { x: 0, y: 0 } },
        { id: "clip", title: "Clip", type: "asset", inputs: {}, config: {}, asset: { type: "video" }, position: { x: 0, y: 200 } },
        { id: "clip2", title: "Clip 2", type: "asset", inputs: {}, config: {}, asset: { type: "video" } },
        { id: "voice", title: "Voice", type: "generate-voiceover", inputs: { script: ["script"] }, config: { speed: 1.25 } },
        {
          id: "merge",
          title: "Merge",
          type: "merge-videos",
          inputs: { segments: ["clip2", "clip"] },
          config: { reencode: "always" },
          position: { x: 400, y: 100 },
        },
      ],
    });

    const imported = await call("POST", "/pipelines/import", exported.body);
    expect(imported.status, JSON.stringify(imported.body)).toBe(201);
    expect(imported.body.pipeline.id).not.toBe(pipeline.id);
    // Told apart from the pipeline it came from.
    expect(imported.body.pipeline.title).toBe("Show: 1/2 (imported)");
    const again = await call("GET", `/pipelines/${imported.body.pipeline.id}/export`);
    expect(again.body).toEqual({ ...exported.body, title: "Show: 1/2 (imported)" });
    const nodes = (await call("GET", `/pipelines/${imported.body.pipeline.id}/nodes`)).body.nodes;
    expect(nodes.every((n: { status: string; output: unknown }) => n.status === "pending" && n.output === null)).toBe(true);
  });

  it('titles an import "<title> (imported)" unless ?title= names it', async () => {
    const document = { format: PIPELINE_DOCUMENT_FORMAT, version: 1, title: "Episode 12", nodes: [] };
    const listed = async () => (await call("GET", "/pipelines")).body.pipelines.map((p: { title: string }) => p.title);
    const first = await call("POST", "/pipelines/import", document);
    expect(first.status, JSON.stringify(first.body)).toBe(201);
    expect(first.body.pipeline.title).toBe("Episode 12 (imported)");
    // A title that already says it is a copy is kept: suffixes do not stack.
    expect((await call("POST", "/pipelines/import", { ...document, title: "Episode 12 (imported)" })).body.pipeline.title).toBe("Episode 12 (imported)");
    expect((await call("POST", "/pipelines/import", { ...document, title: "Episode 12 (copy)" })).body.pipeline.title).toBe("Episode 12 (copy)");
    const named = await call("POST", `/pipelines/import?title=${encodeURIComponent("  Episode 12, take 2 ")}`, document);
    expect(named.body.pipeline.title).toBe("Episode 12, take 2");
    expect(await listed()).toContain("Episode 12, take 2");
    // A long title keeps the suffix within the 200-character limit.
    const long = await call("POST", "/pipelines/import", { ...document, title: "x".repeat(200) });
    expect(long.body.pipeline.title).toBe(`${"x".repeat(189)} (imported)`);
    const refused = await call("POST", "/pipelines/import?title=", document);
    expect(refused.status).toBe(400);
    expect(refused.body.error).toBe("title must not be empty");
  });

  it("lists every problem of an invalid document and creates nothing", async () => {
    const before = (await db.admin.query("select count(*)::int as n from video_production_pipelines")).rows[0].n;
    const res = await call("POST", "/pipelines/import", {
      format: PIPELINE_DOCUMENT_FORMAT,
      version: 1,
      title: "Broken",
      nodes: [
        { id: "a", title: "A", type: "asset", asset: { type: "audio" } },
        { id: "m", title: "M", type: "merge-videos", inputs: { segments: ["a", "ghost"] }, config: { fps: 500 } },
        { id: "c", title: "C", type: "asset", asset: { type: "video", source: "/etc/passwd" } },
      ],
    });
    expect(res.status).toBe(422);
    expect(res.body.error).toBe("The pipeline document has 4 problems; nothing was created");
    expect(res.body.problems.map((p: { text: string }) => p.text)).toEqual([
      'node "m" config.fps: Too big: expected number to be <=120',
      'node "m" inputs.segments: input "segments" accepts video, but node "a" produces audio',
      'node "m" inputs.segments: input "segments" refers to node "ghost", which does not exist in this pipeline',
      'node "c" asset: Unrecognized key: "source"',
    ]);
    expect(res.body.problems[1]).toMatchObject({ node: "m", path: "inputs.segments" });
    expect((await db.admin.query("select count(*)::int as n from video_production_pipelines")).rows[0].n).toBe(before);

    expect((await call("POST", "/pipelines/import", "{ nope")).status).toBe(400);
    expect((await call("POST", "/pipelines/import", [])).body.problems).toEqual([
      { message: "the document must be a JSON object", text: "the document must be a JSON object" },
    ]);
  });

  it("exporting an unknown pipeline is a 404", async () => {
    expect(await call("GET", "/pipelines/nope/export")).toMatchObject({ status: 404, body: { error: "Pipeline not found" } });
  });
});
