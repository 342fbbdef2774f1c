/**
 * Stored files of deleted pipelines and nodes, and the per-pipeline storage quota, through `app.request()` on the
 * real Postgres, NATS, local disk and an S3 API (s3rver).
 */
import { createHash } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type pg from "pg";
import { createPool, evictCacheEntries, pipelineStorageUsage, roleUrl } from "@vp/db";
import { createLocalStorage, outputKey, type Storage } from "@vp/storage";
import { startTestS3, type TestS3 } from "@vp/storage/testing";
import { createLogger } from "@vp/telemetry";
import { createTestBus, createTestDatabase, insertNodeFixture, TEST_AUTH, testToken, type TestBus, type TestDatabase } from "@vp/testkit";
import { createApp } from "./app";
import { createGatewayAuth } from "./auth";
import { collectDeletedFiles } from "./storage-files";

const logger = createLogger({ service: "gateway-test", level: "warn" });
const QUOTA = 2500;

let db: TestDatabase;
let bus: TestBus;
let reader: pg.Pool;
let editor: pg.Pool;
let stateWriter: pg.Pool;
let scratch: string;
let s3: TestS3;
const backends: Record<"local" | "s3", { storage: Storage; app: ReturnType<typeof createApp> }> = {} as never;

function appOn(storage: Storage) {
  return createApp({
    reader,
    editor,
    bus: bus.bus,
    topology: bus.topology,
    storage,
    logger,
    auth: createGatewayAuth(
      { mode: "jwt", secret: TEST_AUTH.secret, issuer: TEST_AUTH.issuer, audience: TEST_AUTH.audience, devLogin: false, devLoginTtlSeconds: 3600 },
      logger,
    ),
    maxUploadBytes: 1024 * 1024,
    storageQuotaBytes: QUOTA,
    executeVerdictTimeoutMs: 5_000,
    corsOrigins: [],
    closing: new Promise(() => {}),
  });
}

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "vp-gw-files-"));
  db = await createTestDatabase();
  bus = await createTestBus();
  s3 = await startTestS3();
  reader = createPool({ url: roleUrl(db.adminUrl, "vp_reader"), applicationName: "gw-files-test-reader" });
  editor = createPool({ url: roleUrl(db.adminUrl, "vp_editor"), applicationName: "gw-files-test-editor" });
  stateWriter = createPool({ url: roleUrl(db.adminUrl, "vp_state_writer"), applicationName: "gw-files-test-state-writer" });
  const local = createLocalStorage({ root: join(scratch, "storage") });
  const remote = s3.storage("gw");
  backends.local = { storage: local, app: appOn(local) };
  backends.s3 = { storage: remote, app: appOn(remote) };
});

afterAll(async () => {
  await reader?.end();
  await editor?.end();
  await stateWriter?.end();
  await bus?.cleanup();
  await db?.drop();
  await s3?.close();
  await rm(scratch, { recursive: true, force: true });
});

type Backend = keyof typeof backends;

async function call(backend: Backend, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const init: RequestInit & { duplex?: "half" } = { method, headers: { authorization: `Bearer ${await testToken()}`, ...headers } };
  if (body instanceof Uint8Array || body instanceof ReadableStream) {
    init.body = body as BodyInit;
    if (body instanceof ReadableStream) init.duplex = "half";
  } else if (body !== undefined) {
    init.body = JSON.stringify(body);
    (init.headers as Record<string, string>)["content-type"] = "application/json";
  }
  const res = await backends[backend].app.request(`/v1/video_production${path}`, init);
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

async function newPipeline(backend: Backend): Promise<string> {
  const res = await call(backend, "POST", "/pipelines", { title: "files" });
  expect(res.status).toBe(201);
  return res.body.pipeline.id;
}

/** An asset node with an uploaded text file of `bytes` bytes; returns the upload's key. */
async function uploadedAsset(backend: Backend, pipelineId: string, nodeId: string, bytes: number): Promise<string> {
  expect((await call(backend, "POST", `/pipelines/${pipelineId}/nodes`, { id: nodeId, title: nodeId, type: "asset", asset: { type: "text" } })).status).toBe(
    201,
  );
  const res = await upload(backend, pipelineId, nodeId, bytes);
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body.node.asset.source;
}

const upload = (backend: Backend, pipelineId: string, nodeId: string, bytes: number) =>
  call(backend, "PUT", `/pipelines/${pipelineId}/nodes/${nodeId}/asset`, new Uint8Array(bytes).fill(120), {
    "content-type": "text/plain",
    "content-length": String(bytes),
  });

async function keysUnder(backend: Backend, prefix: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const object of backends[backend].storage.list(prefix)) keys.push(object.key);
  return keys.sort();
}

/** What the state-writer stores when a node's result fills the cache. */
async function cacheEntryFor(pipelineId: string, nodeId: string, s3Key: string) {
  const key = createHash("sha256").update(s3Key).digest("hex");
  await stateWriter.query(
    `INSERT INTO video_production_cache (cache_key, node_type, output, cost, pipeline_id, node_id) VALUES ($1, 'generate-voiceover', $2::jsonb, 0.2, $3, $4)`,
    [key, JSON.stringify({ type: "audio", s3Key, size: 11 }), pipelineId, nodeId],
  );
}

/** The state-writer's eviction of every entry that keeps a deleted owner's file, then the gateway's collection. */
async function evictKeptAndCollect(backend: Backend) {
  await evictCacheEntries(stateWriter, { idleMs: 24 * 3600_000, maxKeptBytes: 0 });
  return collectDeletedFiles({ reader, editor, storage: backends[backend].storage, logger });
}

describe.each(["local", "s3"] as const)("deleting a pipeline (%s storage)", (backend) => {
  it("deletes its uploads and every attempt's outputs, keeps a file the cache refers to until that entry is evicted, and leaves other pipelines alone", async () => {
    const pipelineId = await newPipeline(backend);
    const other = await newPipeline(backend);
    const upload = await uploadedAsset(backend, pipelineId, "clip", 100);
    const otherUpload = await uploadedAsset(backend, other, "clip", 100);
    // A voiceover that ran twice: the first attempt's output was superseded, the second is the node's cached result.
    const first = outputKey(pipelineId, "voice", "job1", "mp3", 1);
    const second = outputKey(pipelineId, "voice", "job1", "mp3", 2);
    await backends[backend].storage.put(first, Buffer.alloc(7));
    await backends[backend].storage.put(second, Buffer.alloc(11));
    await insertNodeFixture(db.admin, {
      pipelineId,
      id: "voice",
      type: "generate-voiceover",
      status: "completed",
      output: { type: "audio", s3Key: second, size: 11 },
    });
    await cacheEntryFor(pipelineId, "voice", second);
    expect(await keysUnder(backend, `pipelines/${pipelineId}/`)).toEqual([upload, first, second].sort());

    expect((await call(backend, "DELETE", `/pipelines/${pipelineId}`)).status).toBe(204);

    expect(await keysUnder(backend, `pipelines/${pipelineId}/`)).toEqual([second]);
    expect(await keysUnder(backend, `pipelines/${other}/`)).toEqual([otherUpload]);
    const { rows } = await db.admin.query(`SELECT s3_key, bytes FROM video_production_storage_garbage WHERE pipeline_id = $1`, [pipelineId]);
    expect(rows).toEqual([{ s3_key: second, bytes: "11" }]);

    // Collection before the eviction deletes nothing the cache refers to.
    await collectDeletedFiles({ reader, editor, storage: backends[backend].storage, logger });
    expect(await keysUnder(backend, `pipelines/${pipelineId}/`)).toEqual([second]);

    const collected = await evictKeptAndCollect(backend);
    expect(collected).toMatchObject({ deleted: 1, bytes: 11 });
    expect(await keysUnder(backend, `pipelines/${pipelineId}/`)).toEqual([]);
    expect(await keysUnder(backend, `pipelines/${other}/`)).toEqual([otherUpload]);
    expect((await db.admin.query(`SELECT * FROM video_production_storage_garbage`)).rows).toEqual([]);
  });
});

describe("deleting a node", () => {
  it("deletes its files and none of its siblings'", async () => {
    const pipelineId = await newPipeline("local");
    await uploadedAsset("local", pipelineId, "gone", 100);
    const stays = await uploadedAsset("local", pipelineId, "stays", 100);
    expect((await call("local", "DELETE", `/pipelines/${pipelineId}/nodes/gone`)).status).toBe(204);
    expect(await keysUnder("local", `pipelines/${pipelineId}/`)).toEqual([stays]);
  });

  it("a replaced upload the cache refers to is kept (and counted) until the entry is evicted", async () => {
    const pipelineId = await newPipeline("local");
    const firstUpload = await uploadedAsset("local", pipelineId, "clip", 100);
    await cacheEntryFor(pipelineId, "clip", firstUpload);
    const res = await upload("local", pipelineId, "clip", 200);
    expect(res.status).toBe(200);
    expect(await keysUnder("local", `pipelines/${pipelineId}/`)).toEqual([firstUpload, res.body.node.asset.source].sort());
    expect(await pipelineStorageUsage(reader, pipelineId)).toBe(300);
    await evictKeptAndCollect("local");
    expect(await pipelineStorageUsage(reader, pipelineId)).toBe(200);
    expect(await keysUnder("local", `pipelines/${pipelineId}/`)).toEqual([res.body.node.asset.source]);
  });
});

describe("the pipeline storage quota", () => {
  it("an upload past the quota is a 413 naming the quota and the use, before and while streaming, and stores nothing", async () => {
    const pipelineId = await newPipeline("local");
    await uploadedAsset("local", pipelineId, "a", 1000);
    await uploadedAsset("local", pipelineId, "b", 1000);
    expect((await call("local", "POST", `/pipelines/${pipelineId}/nodes`, { id: "c", title: "c", type: "asset", asset: { type: "text" } })).status).toBe(201);

    const declared = await upload("local", pipelineId, "c", 1000);
    expect(declared.status).toBe(413);
    expect(declared.body).toMatchObject({ quota_bytes: QUOTA, used_bytes: 2000, upload_bytes: 1000 });
    expect(declared.body.error).toMatch(/quota is 2500 bytes .*2000 bytes .* in use; this upload is 1000 bytes/);

    // No Content-Length: the body is cut where the quota ends.
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        for (let i = 0; i < 10; i++) controller.enqueue(new Uint8Array(100).fill(120));
        controller.close();
      },
    });
    const streamed = await call("local", "PUT", `/pipelines/${pipelineId}/nodes/c/asset`, body, { "content-type": "text/plain" });
    expect(streamed.status).toBe(413);
    expect(streamed.body).toMatchObject({ quota_bytes: QUOTA, used_bytes: 2000 });
    expect(await keysUnder("local", `pipelines/${pipelineId}/nodes/c/`)).toEqual([]);

    // A small enough file still fits.
    expect((await upload("local", pipelineId, "c", 500)).status).toBe(200);
    const full = await upload("local", pipelineId, "c", 1);
    expect(full.status).toBe(413);
    expect(full.body).toMatchObject({ quota_bytes: QUOTA, used_bytes: 2500 });
  });

  it("parallel uploads that fit one at a time but not together: one is stored, the other is a 413", async () => {
    const pipelineId = await newPipeline("local");
    for (const id of ["a", "b"]) {
      expect((await call("local", "POST", `/pipelines/${pipelineId}/nodes`, { id, title: id, type: "asset", asset: { type: "text" } })).status).toBe(201);
    }
    const results = await Promise.all(["a", "b"].map((id) => upload("local", pipelineId, id, 1500)));
    expect(results.map((r) => r.status).sort()).toEqual([200, 413]);
    expect(results.find((r) => r.status === 413)!.body).toMatchObject({ quota_bytes: QUOTA, used_bytes: 1500, upload_bytes: 1500 });
    // The reservation ends with the upload: what is left is free again.
    expect((await upload("local", pipelineId, results[0]!.status === 200 ? "b" : "a", 1000)).status).toBe(200);
  });

  it("upload, delete, repeat never holds more than the quota, counting files kept for the cache", async () => {
    const pipelineId = await newPipeline("local");
    const stored = async () => {
      let bytes = 0;
      for await (const object of backends.local.storage.list(`pipelines/${pipelineId}/`)) bytes += object.size;
      return bytes;
    };
    for (let round = 0; round < 6; round++) {
      for (const id of ["a", "b", "c"]) {
        const created = await call("local", "POST", `/pipelines/${pipelineId}/nodes`, { id, title: id, type: "asset", asset: { type: "text" } });
        expect(created.status).toBe(201);
        const res = await upload("local", pipelineId, id, 1000);
        // Two fit in 2500 bytes, the third never does.
        expect(res.status).toBe(id === "c" ? 413 : 200);
      }
      expect(await stored()).toBeLessThanOrEqual(QUOTA);
      for (const id of ["a", "b", "c"]) expect((await call("local", "DELETE", `/pipelines/${pipelineId}/nodes/${id}`)).status).toBe(204);
      expect(await stored()).toBe(0);
    }

    // A deleted node's file the cache refers to stays, and so does its share of the quota.
    const cached = await uploadedAsset("local", pipelineId, "a", 1000);
    await cacheEntryFor(pipelineId, "a", cached);
    expect((await call("local", "DELETE", `/pipelines/${pipelineId}/nodes/a`)).status).toBe(204);
    await uploadedAsset("local", pipelineId, "b", 1000);
    expect((await call("local", "POST", `/pipelines/${pipelineId}/nodes`, { id: "c", title: "c", type: "asset", asset: { type: "text" } })).status).toBe(201);
    const refused = await upload("local", pipelineId, "c", 1000);
    expect(refused.status).toBe(413);
    expect(refused.body).toMatchObject({ used_bytes: 2000 });
    expect(await stored()).toBe(2000);

    // Once the entry is evicted the file goes and the space is free again.
    await evictKeptAndCollect("local");
    expect(await stored()).toBe(1000);
    expect((await upload("local", pipelineId, "c", 1000)).status).toBe(200);
  });
});
