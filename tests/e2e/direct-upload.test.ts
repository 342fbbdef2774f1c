/**
 * Asset uploads straight to the bucket end to end: the five services with STORAGE=s3, UPLOAD_DELIVERY=presigned and
 * OUTPUT_DELIVERY=presigned, on s3rver behind the strict front (packages/storage/src/strict-s3.ts: presigned
 * signatures, unknown uploads, aborts and the parts of a completion are checked as S3 checks them). The client talks
 * HTTP only: it starts the upload at the gateway, PUTs the parts with plain fetch to the presigned URLs as a browser
 * does, completes, runs the asset node and plays its output from the presigned GET the gateway redirects to.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { probe } from "@vp/media";
import { startTestS3, type TestS3 } from "@vp/storage/testing";
import { createTestBus, createTestDatabase, startStack, type Stack, type TestBus, type TestDatabase } from "@vp/testkit";
import { client, type Client } from "./helpers";

const exec = promisify(execFile);

let db: TestDatabase;
let bus: TestBus;
let s3: TestS3;
let stack: Stack;
let api: Client;
let scratch: string;
let clip: Buffer;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "vp-e2e-direct-upload-"));
  db = await createTestDatabase();
  bus = await createTestBus({ jobAckWaitMs: 5000 });
  s3 = await startTestS3({ strict: true });
  stack = await startStack({
    databaseAdminUrl: db.adminUrl,
    namespace: bus.topology.namespace,
    storageRoot: join(scratch, "unused-local-storage"),
    workRoot: join(scratch, "work"),
    env: { JOB_ACK_WAIT_MS: "5000", ...s3.env, S3_PREFIX: "e2e", UPLOAD_DELIVERY: "presigned", OUTPUT_DELIVERY: "presigned" },
  });
  api = client(stack.baseUrl);
  // Lossless noise: a real H.264 MP4 of about 9 MB, so it travels as two parts (the part size is 8 MiB).
  const path = join(scratch, "noise.mp4");
  const source = "nullsrc=s=320x240:r=25:d=3,geq=lum='random(1)*255':cb=128:cr=128";
  await exec("ffmpeg", ["-v", "error", "-f", "lavfi", "-i", source, "-c:v", "libx264", "-preset", "ultrafast", "-qp", "0", "-pix_fmt", "yuv420p", path]);
  clip = await readFile(path);
}, 120_000);

afterAll(async () => {
  await stack?.stop();
  await s3?.close();
  await bus?.cleanup();
  await db?.drop();
  await rm(scratch, { recursive: true, force: true });
});

/** PUTs the file's parts to the presigned URLs as a browser does (plain fetch, no credentials); the ETags. */
async function sendParts(file: Buffer, started: { part_size: number; parts: Array<{ number: number; size: number; url: string }> }) {
  const etags: Array<{ number: number; etag: string }> = [];
  for (const part of started.parts) {
    const start = (part.number - 1) * started.part_size;
    const answer = await fetch(part.url, { method: "PUT", body: new Uint8Array(file.subarray(start, start + part.size)) });
    expect(answer.status, await answer.clone().text()).toBe(200);
    etags.push({ number: part.number, etag: answer.headers.get("etag")! });
  }
  return etags;
}

/** The node's asset column as the API answers it. */
const assetOf = async (node: string) => (await api.call("GET", node)).body.node.asset;

describe("asset uploads straight to S3 (UPLOAD_DELIVERY=presigned) through HTTP", () => {
  it("an asset sent in parts to the bucket is recorded on completion, runs, and its output plays from a presigned URL", async () => {
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "direct upload" });
    const node = `/pipelines/${pipeline.id}/nodes/clip`;
    await api.ok("POST", `/pipelines/${pipeline.id}/nodes`, { id: "clip", title: "Clip", type: "asset", asset: { type: "video" } });
    const started = await api.ok("POST", `${node}/asset/uploads`, { name: "noise.mp4", content_type: "video/mp4", size: clip.length });
    expect(started).toMatchObject({ delivery: "presigned", part_size: 8 * 1024 * 1024, part_count: 2 });
    for (const part of started.parts) expect(new URL(part.url).origin).toBe(s3.endpoint);
    expect(await assetOf(node)).toEqual({ type: "video" });

    const etags = await sendParts(clip, started);
    const { node: recorded } = await api.ok("POST", `${node}/asset/uploads/complete`, { upload: started.upload, parts: etags });
    expect(recorded.asset).toMatchObject({ type: "video", size: clip.length, contentType: "video/mp4" });
    expect(await s3.pendingUploads()).toEqual([]);

    await api.ok("POST", `${node}/execute`);
    const done = await api.waitForStatus(pipeline.id, "clip", ["completed", "failed"]);
    expect(done.status, JSON.stringify(done.metadata)).toBe("completed");
    expect(done.output).toMatchObject({ type: "video", width: 320, height: 240, size: clip.length });
    expect(Math.abs((done.output!.duration as number) - 3)).toBeLessThanOrEqual(0.05);

    // The output is a 302 to the bucket; the bytes come from there and decode.
    const redirect = await fetch(`${api.root}${node}/output`, { headers: await api.authHeader(), redirect: "manual" });
    expect(redirect.status).toBe(302);
    const location = redirect.headers.get("location")!;
    expect(new URL(location).origin).toBe(s3.endpoint);
    const media = await fetch(location);
    expect(media.status).toBe(200);
    const bytes = Buffer.from(await media.arrayBuffer());
    expect(bytes.equals(clip)).toBe(true);
    const played = join(scratch, "played.mp4");
    await writeFile(played, bytes);
    await exec("ffmpeg", ["-v", "error", "-i", played, "-f", "null", "-"]);
    expect((await probe(played)).video).toMatchObject({ width: 320, height: 240 });
  });

  it("refuses a size mismatch, a wrong type and a user without the editor role with the reason, recording nothing", async () => {
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "direct upload refusals" });
    const node = `/pipelines/${pipeline.id}/nodes/clip`;
    await api.ok("POST", `/pipelines/${pipeline.id}/nodes`, { id: "clip", title: "Clip", type: "asset", asset: { type: "video" } });
    const declared = { name: "noise.mp4", content_type: "video/mp4", size: clip.length };

    const viewer = await client(stack.baseUrl, { roles: ["viewer"] }).call("POST", `${node}/asset/uploads`, declared);
    expect([viewer.status, viewer.body.missing_role]).toEqual([403, "editor"]);
    const anonymous = await client(stack.baseUrl, { token: null }).call("POST", `${node}/asset/uploads`, declared);
    expect(anonymous.status).toBe(401);
    const wrongType = await api.call("POST", `${node}/asset/uploads`, { ...declared, content_type: "text/html" });
    expect(wrongType.status).toBe(415);
    expect(wrongType.body.error).toMatch(/^Unsupported Content-Type "text\/html"; use one of/);
    const notVideo = await api.call("POST", `${node}/asset/uploads`, { ...declared, name: "voice.mp3", content_type: "audio/mpeg" });
    expect([notVideo.status, notVideo.body.error]).toEqual([422, "This asset is declared as video, but the upload is audio/mpeg"]);

    // Parts of another length than their URL was signed for are refused by S3.
    const started = await api.ok("POST", `${node}/asset/uploads`, declared);
    const tooLong = await fetch(started.parts[1].url, { method: "PUT", body: new Uint8Array(started.parts[1].size + 1) });
    expect(tooLong.status).toBe(403);
    expect(await tooLong.text()).toContain("SignatureDoesNotMatch");

    // A completion that assembles less than was declared (one part of two) is refused, and its file deleted.
    const etags = await sendParts(clip, started);
    const short = await api.call("POST", `${node}/asset/uploads/complete`, { upload: started.upload, parts: etags.slice(0, 1) });
    expect(short.status).toBe(422);
    expect(short.body.error).toMatch(/^the stored file is 8388608 bytes, but the upload declared \d+ bytes; nothing was recorded/);
    const editorElsewhere = await client(stack.baseUrl, { roles: ["editor"] }).call("POST", `${node}/asset/uploads/complete`, {
      upload: started.upload,
      parts: etags,
    });
    expect(editorElsewhere.status).toBe(422);
    expect(editorElsewhere.body.error).toMatch(/another user/);

    expect(await assetOf(node)).toEqual({ type: "video" });
    expect(await s3.pendingUploads()).toEqual([]);
    const stored = [];
    for await (const object of s3.storage("e2e").list(`pipelines/${pipeline.id}/`)) stored.push(object.key);
    expect(stored).toEqual([]);
  });
});
