/**
 * Asset uploads straight from the client to S3 (UPLOAD_DELIVERY=presigned) through `app.request()` on the real
 * Postgres and NATS, with s3rver behind the strict front (packages/storage/src/strict-s3.ts): s3rver alone checks
 * neither presigned signatures nor the parts of a completion, and has no AbortMultipartUpload. The parts are PUT
 * with plain fetch to the presigned URLs, as a browser sends them.
 */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type pg from "pg";
import type { Role } from "@vp/auth";
import { createPool, roleUrl } from "@vp/db";
import { createLocalStorage, type Storage } from "@vp/storage";
import { startTestS3, type TestS3 } from "@vp/storage/testing";
import { createLogger } from "@vp/telemetry";
import { createTestBus, createTestDatabase, testToken, type TestBus, type TestDatabase } from "@vp/testkit";
import { createApp } from "../app";
import { testAuth } from "../test-app";
import type { GatewayDeps } from "../deps";

const logger = createLogger({ service: "gateway-direct-upload-test", level: "warn" });
const MiB = 1024 * 1024;
const MAX_UPLOAD = 64 * MiB;
const QUOTA = 40 * MiB;

let db: TestDatabase;
let bus: TestBus;
let reader: pg.Pool;
let editor: pg.Pool;
let s3: TestS3;
let storage: Storage;
let scratch: string;

function appWith(over: Partial<GatewayDeps> = {}) {
  return createApp({
    reader,
    editor,
    bus: bus.bus,
    topology: bus.topology,
    storage,
    logger,
    auth: testAuth(logger),
    maxUploadBytes: MAX_UPLOAD,
    storageQuotaBytes: QUOTA,
    uploadDelivery: { mode: "presigned", urlTtlSeconds: 120 },
    executeVerdictTimeoutMs: 5_000,
    corsOrigins: [],
    closing: new Promise(() => {}),
    ...over,
  });
}
let app: ReturnType<typeof createApp>;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "vp-gw-direct-"));
  db = await createTestDatabase();
  bus = await createTestBus();
  s3 = await startTestS3({ strict: true });
  reader = createPool({ url: roleUrl(db.adminUrl, "vp_reader"), applicationName: "gw-direct-test-reader" });
  editor = createPool({ url: roleUrl(db.adminUrl, "vp_editor"), applicationName: "gw-direct-test-editor" });
  storage = s3.storage("gw");
  app = appWith();
});

afterAll(async () => {
  await reader?.end();
  await editor?.end();
  await bus?.cleanup();
  await db?.drop();
  await s3?.close();
  await rm(scratch, { recursive: true, force: true });
});

type Answer = { status: number; body: any };

async function call(
  method: string,
  path: string,
  body?: unknown,
  options: { roles?: Role[]; subject?: string; on?: ReturnType<typeof createApp>; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const token = await testToken(options.roles, options.subject ? { subject: options.subject } : {});
  const headers: Record<string, string> = { authorization: `Bearer ${token}`, ...options.headers };
  const init: RequestInit = { method, headers };
  if (body instanceof Uint8Array) init.body = body as BodyInit;
  else if (body !== undefined) {
    init.body = JSON.stringify(body);
    headers["content-type"] = "application/json";
  }
  const res = await (options.on ?? app).request(`/v1/video_production${path}`, init);
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

/** A pipeline with one pending asset node declared as `type`. */
async function assetNode(type = "video"): Promise<{ pipelineId: string; nodePath: string }> {
  const created = await call("POST", "/pipelines", { title: "direct uploads" });
  const pipelineId = created.body.pipeline.id;
  expect((await call("POST", `/pipelines/${pipelineId}/nodes`, { id: "clip", title: "clip", type: "asset", asset: { type } })).status).toBe(201);
  return { pipelineId, nodePath: `/pipelines/${pipelineId}/nodes/clip` };
}

/** PUTs one part as a browser does: plain fetch, no credentials, the presigned URL only. */
async function putPart(url: string, bytes: Buffer) {
  const answer = await fetch(url, { method: "PUT", body: new Uint8Array(bytes) });
  return { status: answer.status, etag: answer.headers.get("etag") ?? "", text: await answer.text() };
}

/** Sends every part of `file` to the URLs of a started upload; the ETags to complete with. */
async function sendParts(file: Buffer, parts: Array<{ number: number; size: number; url: string }>, partSize: number) {
  const etags: Array<{ number: number; etag: string }> = [];
  for (const part of parts) {
    const start = (part.number - 1) * partSize;
    const sent = await putPart(part.url, file.subarray(start, start + part.size));
    expect(sent.status, sent.text).toBe(200);
    etags.push({ number: part.number, etag: sent.etag });
  }
  return etags;
}

/** What an upload ticket carries (readable by anyone; only its signature is secret). */
const ticketClaims = (ticket: string) => JSON.parse(Buffer.from(ticket.split(".")[1]!, "base64url").toString());

const assetOf = async (nodePath: string) => (await call("GET", nodePath)).body.node.asset;

describe("direct uploads to S3 (UPLOAD_DELIVERY=presigned)", () => {
  it("starts a multipart upload, takes the parts from plain fetch, and on completion records the asset as PUT .../asset does", async () => {
    const { pipelineId, nodePath } = await assetNode();
    const file = randomBytes(9 * MiB + 321);
    const started = await call("POST", `${nodePath}/asset/uploads`, { name: "holiday clip.mp4", content_type: "video/mp4", size: file.length });
    expect(started.status, JSON.stringify(started.body)).toBe(201);
    const { upload, part_size, part_count, parts, urls_expire_at } = started.body;
    expect(started.body.delivery).toBe("presigned");
    // The part size is the storage's multipart part size (8 MiB), grown for larger files; each URL is for one exact length.
    expect({ part_size, part_count }).toEqual({ part_size: 8 * MiB, part_count: 2 });
    expect(parts.map((p: { number: number; size: number }) => [p.number, p.size])).toEqual([
      [1, 8 * MiB],
      [2, MiB + 321],
    ]);
    for (const p of parts) {
      expect(p.url).toContain(`${s3.endpoint}/${s3.bucket}/gw/pipelines/${pipelineId}/nodes/clip/asset/`);
      expect(p.url).toContain("X-Amz-Expires=120&");
    }
    expect(Date.parse(urls_expire_at) - Date.now()).toBeLessThanOrEqual(120_000);
    // Nothing is recorded before completion.
    expect((await assetOf(nodePath)).source).toBeUndefined();

    const etags = await sendParts(file, parts, part_size);
    const done = await call("POST", `${nodePath}/asset/uploads/complete`, { upload, parts: etags });
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    const asset = done.body.node.asset;
    expect(asset).toMatchObject({ type: "video", size: file.length, contentType: "video/mp4", name: "holiday clip.mp4" });
    expect(asset.source).toMatch(new RegExp(`^pipelines/${pipelineId}/nodes/clip/asset/[0-9a-f-]{36}\\.mp4$`));
    expect(await assetOf(nodePath)).toEqual(asset);
    expect((await storage.getBuffer(asset.source)).equals(file)).toBe(true);
    expect(await s3.pendingUploads()).toEqual([]);

    // Recorded exactly as a PUT records it: the same fields; a later upload replaces it and its file goes.
    const put = await call("PUT", `${nodePath}/asset?name=take%202.mp4`, new Uint8Array(1000).fill(7), { headers: { "content-type": "video/mp4" } });
    expect(put.status).toBe(200);
    expect(Object.keys(put.body.node.asset).sort()).toEqual(Object.keys(asset).sort());
    expect(put.body.node.asset.name).toBe("take 2.mp4");
    expect(await storage.stat(asset.source)).toBeNull();
  });

  it("checks the declared file as PUT .../asset checks a body, before starting anything", async () => {
    const { pipelineId, nodePath } = await assetNode();
    const start = (body: unknown, options: Parameters<typeof call>[3] = {}) => call("POST", `${nodePath}/asset/uploads`, body, options);
    const file = { name: "clip.mp4", content_type: "video/mp4", size: 1000 };
    const refusals: Array<[Answer, number, RegExp]> = [
      [await start(file, { roles: ["viewer"] }), 403, /needs the editor role/],
      [await start({ ...file, content_type: "application/x-sh" }), 415, /Unsupported Content-Type "application\/x-sh"; use one of video\/mp4/],
      [await start({ ...file, content_type: "audio/mpeg" }), 422, /declared as video, but the upload is audio\/mpeg/],
      [await start({ ...file, size: MAX_UPLOAD + 1 }), 413, new RegExp(`Upload is ${MAX_UPLOAD + 1} bytes; the limit is ${MAX_UPLOAD} bytes`)],
      [await start({ ...file, size: QUOTA + 1 }), 413, /Pipeline storage quota exceeded/],
      [await start({ ...file, size: 0 }), 422, /The uploaded file is empty/],
      [await start({ ...file, size: 1.5 }), 422, /size/],
      [await start({ ...file, name: "../../etc/passwd" }), 422, /name: must be a file name/],
      [await start({ ...file, key: "pipelines/other/x.mp4" }), 422, /key/],
      [await call("POST", `/pipelines/${pipelineId}/nodes/nope/asset/uploads`, file), 404, /Node not found/],
    ];
    for (const [answer, status, reason] of refusals) {
      expect(answer.status, JSON.stringify(answer.body)).toBe(status);
      expect(answer.body.error).toMatch(reason);
    }
    expect((await call("POST", `/pipelines/${pipelineId}/nodes`, { id: "merge", title: "m", type: "merge-videos" })).status).toBe(201);
    const notAsset = await call("POST", `/pipelines/${pipelineId}/nodes/merge/asset/uploads`, file);
    expect([notAsset.status, notAsset.body.error]).toEqual([422, "Only asset nodes take an upload, this node is merge-videos"]);
    expect(await s3.pendingUploads()).toEqual([]);
    expect((await assetOf(nodePath)).source).toBeUndefined();
  });

  it("refuses a completion whose stored file is not the declared size, deleting it, and records nothing", async () => {
    const { nodePath } = await assetNode();
    const file = randomBytes(8 * MiB + 10);
    const started = (await call("POST", `${nodePath}/asset/uploads`, { name: "a.mp4", content_type: "video/mp4", size: file.length })).body;
    const etags = await sendParts(file, started.parts, started.part_size);
    // Only the first part listed: S3 assembles 8 MiB of the declared 8 MiB + 10 bytes.
    const short = await call("POST", `${nodePath}/asset/uploads/complete`, { upload: started.upload, parts: etags.slice(0, 1) });
    expect(short.status).toBe(422);
    expect(short.body.error).toBe(
      `the stored file is ${8 * MiB} bytes, but the upload declared ${file.length} bytes; nothing was recorded: start the upload again and send every part`,
    );
    expect((await assetOf(nodePath)).source).toBeUndefined();
    expect(await storage.stat(ticketClaims(started.upload).key)).toBeNull();
    expect(await s3.pendingUploads()).toEqual([]);
  });

  it("answers S3's refusal of the parts with its reason and keeps the upload for another try; abort drops it", async () => {
    const { nodePath } = await assetNode("audio");
    const file = randomBytes(5000);
    const started = (await call("POST", `${nodePath}/asset/uploads`, { name: "voice.mp3", content_type: "audio/mpeg", size: file.length })).body;
    expect(started.part_count).toBe(1);
    const [sent] = await sendParts(file, started.parts, started.part_size);
    const wrong = await call("POST", `${nodePath}/asset/uploads/complete`, { upload: started.upload, parts: [{ number: 1, etag: '"00000000"' }] });
    expect(wrong.status).toBe(422);
    expect(wrong.body.error).toMatch(/^S3 refused the multipart upload: a listed part was not uploaded, or its ETag differs/);
    expect(await s3.pendingUploads()).toHaveLength(1);
    const unordered = await call("POST", `${nodePath}/asset/uploads/complete`, { upload: started.upload, parts: [sent, sent] });
    expect([unordered.status, unordered.body.error]).toEqual([422, "parts: list each part once, in ascending order of number"]);

    expect((await call("POST", `${nodePath}/asset/uploads/abort`, { upload: started.upload }, { roles: ["viewer"] })).status).toBe(403);
    const aborted = await call("POST", `${nodePath}/asset/uploads/abort`, { upload: started.upload });
    expect(aborted.status).toBe(204);
    expect(await s3.pendingUploads()).toEqual([]);
    const late = await call("POST", `${nodePath}/asset/uploads/complete`, { upload: started.upload, parts: [sent] });
    expect(late.status).toBe(404);
    expect(late.body.error).toMatch(/This upload no longer exists/);
    expect((await assetOf(nodePath)).source).toBeUndefined();
  });

  it("takes an upload's ticket only from who started it, for its own node, as the gateway signed it", async () => {
    const { pipelineId, nodePath } = await assetNode("image");
    const file = randomBytes(300);
    const started = (await call("POST", `${nodePath}/asset/uploads`, { name: "still.png", content_type: "image/png", size: file.length })).body;
    const etags = await sendParts(file, started.parts, started.part_size);
    const complete = (upload: string, options: Parameters<typeof call>[3] = {}, path = nodePath) =>
      call("POST", `${path}/asset/uploads/complete`, { upload, parts: etags }, options);

    const viewer = await complete(started.upload, { roles: ["viewer"] });
    expect([viewer.status, viewer.body.missing_role]).toEqual([403, "editor"]);
    const someoneElse = await complete(started.upload, { roles: ["editor"], subject: "mallory" });
    expect(someoneElse.status).toBe(422);
    expect(someoneElse.body.error).toMatch(/^upload: The upload ticket was given to another user/);
    expect((await call("POST", `/pipelines/${pipelineId}/nodes`, { id: "other", title: "o", type: "asset", asset: { type: "image" } })).status).toBe(201);
    const otherNode = await complete(started.upload, {}, `/pipelines/${pipelineId}/nodes/other`);
    expect([otherNode.status, otherNode.body.error]).toEqual([422, "upload: this upload was started for another node"]);
    const [head, , signature] = started.upload.split(".");
    const forged = Buffer.from(JSON.stringify({ ...ticketClaims(started.upload), size: 1 })).toString("base64url");
    const tampered = await complete(`${head}.${forged}.${signature}`);
    expect(tampered.status).toBe(422);
    expect(tampered.body.error).toMatch(/signature does not verify/);
    const bearer = await complete(await testToken());
    expect(bearer.status).toBe(422);
    expect((await assetOf(nodePath)).source).toBeUndefined();

    const done = await complete(started.upload);
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    expect(done.body.node.asset).toMatchObject({ type: "image", contentType: "image/png", size: 300 });
  });

  it("hands out short-lived part URLs: an expired one is refused by S3, fresh ones come from .../uploads/parts", async () => {
    const quick = appWith({ uploadDelivery: { mode: "presigned", urlTtlSeconds: 1 } });
    const { nodePath } = await assetNode("text");
    const file = Buffer.from("a script, sent straight to the bucket\n");
    const started = (await call("POST", `${nodePath}/asset/uploads`, { name: "script.txt", content_type: "text/plain", size: file.length }, { on: quick }))
      .body;
    expect(started.parts[0].url).toContain("X-Amz-Expires=1&");
    await new Promise((resolve) => setTimeout(resolve, 2100));
    const expired = await putPart(started.parts[0].url, file);
    expect(expired.status).toBe(403);
    expect(expired.text).toContain("Request has expired");

    const beyond = await call("POST", `${nodePath}/asset/uploads/parts`, { upload: started.upload, parts: [2] }, { on: quick });
    expect([beyond.status, beyond.body.error]).toEqual([422, "parts: part 2 is beyond this upload's 1 part(s)"]);
    const fresh = await call("POST", `${nodePath}/asset/uploads/parts`, { upload: started.upload, parts: [1] }, { on: quick });
    expect(fresh.status).toBe(200);
    const etags = await sendParts(file, fresh.body.parts, started.part_size);
    const done = await call("POST", `${nodePath}/asset/uploads/complete`, { upload: started.upload, parts: etags }, { on: quick });
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    expect((await storage.getBuffer(done.body.node.asset.source)).toString()).toBe(file.toString());
  });

  it("without direct uploads (local storage, or UPLOAD_DELIVERY=proxy) the same checks run and the client is told to PUT the file", async () => {
    const local = appWith({ storage: createLocalStorage({ root: join(scratch, "local") }), uploadDelivery: undefined });
    const proxied = appWith({ uploadDelivery: { mode: "proxy" } });
    for (const on of [local, proxied]) {
      const { nodePath } = await assetNode();
      const start = (body: unknown) => call("POST", `${nodePath}/asset/uploads`, body, { on });
      expect(await start({ name: "a.mp4", content_type: "video/mp4", size: 10 })).toEqual({ status: 200, body: { delivery: "proxy" } });
      expect((await start({ name: "a.sh", content_type: "application/x-sh", size: 10 })).status).toBe(415);
      const complete = await call("POST", `${nodePath}/asset/uploads/complete`, { upload: "x", parts: [{ number: 1, etag: "e" }] }, { on });
      expect(complete.status).toBe(409);
      expect(complete.body.error).toMatch(/takes uploads through PUT \.\.\.\/asset only/);
    }
  });
});
