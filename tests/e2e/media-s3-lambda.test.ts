/**
 * The S3 storage and Lambda backend end to end: the five services with STORAGE=s3 on a local S3 server (s3rver) and
 * FFMPEG_BACKEND=lambda, the executor invoking video-merger, audio-mixer and video-composer through the
 * real Lambda client against the local Invoke endpoint (which runs the lambdas/ handlers on the same bucket).
 * Uploads, outputs and ranged reads all go through S3.
 */
import { execFile } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { audioLevel, makeSpeechClip, makeTestClip, probe, streamSummary } from "@vp/media";
import { createStorageFromEnv } from "@vp/storage";
import { startTestS3, type TestS3 } from "@vp/storage/testing";
import { createTestBus, createTestDatabase, startStack, type Stack, type TestBus, type TestDatabase } from "@vp/testkit";
import { createHandler as createAudioMixer } from "../../lambdas/audio-mixer/handler";
import { startLocalLambda, type LocalLambda } from "../../lambdas/local-invoke/server";
import { createHandler as createVideoComposer } from "../../lambdas/video-composer/handler";
import { createHandler as createVideoMerger } from "../../lambdas/video-merger/handler";
import { client, type Client } from "./helpers";

const exec = promisify(execFile);

let db: TestDatabase;
let bus: TestBus;
let s3: TestS3;
let lambda: LocalLambda;
let stack: Stack;
let api: Client;
let scratch: string;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), "vp-e2e-s3-lambda-"));
  db = await createTestDatabase();
  bus = await createTestBus({ jobAckWaitMs: 5000 });
  s3 = await startTestS3();
  const s3Env = { ...s3.env, S3_PREFIX: "e2e" };
  // The functions, as deployed: their storage from the same environment variables as on Lambda.
  const storage = createStorageFromEnv(s3Env);
  const tmpRoot = await mkdtemp(join(scratch, "lambda-tmp-"));
  lambda = await startLocalLambda({
    "video-merger": createVideoMerger({ storage, tmpRoot, memoryMb: 3008 }),
    "audio-mixer": createAudioMixer({ storage, tmpRoot, memoryMb: 3008 }),
    "video-composer": createVideoComposer({ storage, tmpRoot, memoryMb: 3008 }),
  });
  stack = await startStack({
    databaseAdminUrl: db.adminUrl,
    namespace: bus.topology.namespace,
    storageRoot: join(scratch, "unused-local-storage"),
    workRoot: join(scratch, "work"),
    env: { JOB_ACK_WAIT_MS: "5000", ...s3Env, FFMPEG_BACKEND: "lambda", LAMBDA_ENDPOINT: lambda.endpoint, LAMBDA_REGION: "us-east-1" },
  });
  api = client(stack.baseUrl);
});

afterAll(async () => {
  await stack?.stop();
  await lambda?.close();
  await s3?.close();
  await bus?.cleanup();
  await db?.drop();
  await rm(scratch, { recursive: true, force: true });
});

async function upload(pipelineId: string, id: string, type: "video" | "audio", path: string, contentType: string) {
  await api.ok("POST", `/pipelines/${pipelineId}/nodes`, { id, title: id, type: "asset", asset: { type } });
  await api.ok("PUT", `/pipelines/${pipelineId}/nodes/${id}/asset`, new Uint8Array(await readFile(path)), { "content-type": contentType });
  await api.ok("POST", `/pipelines/${pipelineId}/nodes/${id}/execute`);
  const node = await api.waitForStatus(pipelineId, id, ["completed", "failed"]);
  expect(node.status, JSON.stringify(node.metadata)).toBe("completed");
}

async function run(pipelineId: string, id: string) {
  await api.ok("POST", `/pipelines/${pipelineId}/nodes/${id}/execute`);
  const node = await api.waitForStatus(pipelineId, id, ["completed", "failed"], 90_000);
  expect(node.status, JSON.stringify(node.metadata)).toBe("completed");
  const response = await fetch(`${api.root}/pipelines/${pipelineId}/nodes/${id}/output`, { headers: await api.authHeader() });
  expect(response.status).toBe(200);
  const bytes = Buffer.from(await response.arrayBuffer());
  expect(bytes.length).toBe(node.output!.size);
  const file = join(scratch, `${id}.mp4`);
  await writeFile(file, bytes);
  await exec("ffmpeg", ["-v", "error", "-i", file, "-f", "null", "-"]);
  return { node, file, bytes };
}

describe("STORAGE=s3 and FFMPEG_BACKEND=lambda through HTTP", () => {
  it("merges, mixes and composes through the Lambda functions, with costs that add up", async () => {
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "E2E S3 + Lambda" });
    const clip = (name: string) => join(scratch, name);
    await Promise.all([
      makeTestClip({ path: clip("a.mp4"), durationSeconds: 2, width: 320, height: 240, fps: 30 }),
      makeTestClip({ path: clip("b.mp4"), durationSeconds: 1.5, width: 320, height: 240, fps: 30, color: "#336699" }),
      makeTestClip({ path: clip("c.mp4"), durationSeconds: 3, width: 256, height: 144, fps: 30 }),
      makeTestClip({ path: clip("bg.mp4"), durationSeconds: 3, width: 1280, height: 720, fps: 25 }),
      makeSpeechClip({ path: clip("voice.wav"), text: "Stored in S3, mixed on Lambda.", durationSeconds: 3, workDir: scratch }),
    ]);
    for (const id of ["a", "b", "c", "bg"]) await upload(pipeline.id, id, "video", clip(`${id}.mp4`), "video/mp4");
    await upload(pipeline.id, "voice", "audio", clip("voice.wav"), "audio/wav");
    // The upload itself went to the bucket, under the prefix.
    const asset = await api.node(pipeline.id, "a");
    expect(await s3.storage("e2e").stat(asset.output!.s3Key as string)).toEqual({ size: (await readFile(clip("a.mp4"))).length });

    await api.ok("POST", `/pipelines/${pipeline.id}/nodes`, { id: "merge", title: "Merge", type: "merge-videos", inputs: { segments: ["a", "b", "c"] } });
    const merged = await run(pipeline.id, "merge");
    expect(merged.node.output).toMatchObject({ strategy: "reencode", width: 320, height: 240 });
    expect(Math.abs((merged.node.output!.duration as number) - 6.5)).toBeLessThanOrEqual(0.1);

    await api.ok("POST", `/pipelines/${pipeline.id}/nodes`, {
      id: "mix",
      title: "Voice",
      type: "mix-audio",
      inputs: { video: ["merge"], audio: ["voice"] },
      config: { lengthMismatch: "pad" },
    });
    const mixed = await run(pipeline.id, "mix");
    expect(Math.abs((mixed.node.output!.duration as number) - 6.5)).toBeLessThanOrEqual(0.1);
    expect((await streamSummary(mixed.file)).map((s) => s.type)).toEqual(["video", "audio"]);
    expect((await audioLevel(mixed.file, 4, 2)).maxDb).toBeLessThan(-80);

    await api.ok("POST", `/pipelines/${pipeline.id}/nodes`, {
      id: "pip",
      title: "PiP",
      type: "compose-video",
      inputs: { background: ["bg"], overlays: ["mix"] },
      config: { overlays: [{ position: "bottom-right", size: 0.25 }], audio: "overlay" },
    });
    const composed = await run(pipeline.id, "pip");
    const p = await probe(composed.file);
    expect(p.video).toMatchObject({ width: 1280, height: 720, fps: 25 });
    expect(Math.abs(p.durationSeconds - 3)).toBeLessThanOrEqual(0.05);

    // Every ffmpeg node ran on Lambda, none in the executor.
    expect(lambda.invocations.map((i) => [i.functionName, i.ok])).toEqual([
      ["video-merger", true],
      ["audio-mixer", true],
      ["video-composer", true],
    ]);
    const executor = stack.services.get("executor-ffmpeg")!;
    expect(executor.logs.filter((l) => l.msg === "ffmpeg started")).toEqual([]);

    // Ranged reads of an S3 output through the gateway.
    const ranged = await fetch(`${api.root}/pipelines/${pipeline.id}/nodes/pip/output`, { headers: { range: "bytes=10-1033", ...(await api.authHeader()) } });
    expect(ranged.status).toBe(206);
    expect(Buffer.from(await ranged.arrayBuffer())).toEqual(composed.bytes.subarray(10, 1034));

    // Lambda nodes cost their GB-seconds; assets are free; the pipeline's total is the sum.
    const costs = await Promise.all(["merge", "mix", "pip"].map(async (id) => (await api.node(pipeline.id, id)).metadata!.cost as number));
    for (const cost of costs) expect(cost).toBeGreaterThan(0);
    const { pipeline: after } = await api.ok("GET", `/pipelines/${pipeline.id}`);
    expect(after.metadata.totalCost).toBeCloseTo(
      costs.reduce((a, b) => a + b, 0),
      6,
    );
  });

  it("a function error fails the node with the function's reason", async () => {
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "E2E Lambda error" });
    const clip = join(scratch, "short.mp4");
    await makeTestClip({ path: clip, durationSeconds: 1, width: 320, height: 240, fps: 30 });
    await upload(pipeline.id, "v", "video", clip, "video/mp4");
    await api.ok("POST", `/pipelines/${pipeline.id}/nodes`, {
      id: "pip",
      title: "Missing input object",
      type: "compose-video",
      inputs: { background: ["v"], overlays: ["v"] },
      config: { overlays: [{ position: "custom", x: 10, y: 10, size: 0.5 }] },
    });
    // The function is asked to read an object that is gone: its NotFoundError comes back as the reason.
    const node = await api.node(pipeline.id, "v");
    await s3.storage("e2e").delete(node.output!.s3Key as string);
    await api.ok("POST", `/pipelines/${pipeline.id}/nodes/pip/execute`);
    const failed = await api.waitForStatus(pipeline.id, "pip", ["completed", "failed"], 60_000);
    expect(failed.status).toBe("failed");
    expect(failed.metadata!.error).toMatch(/^Lambda error: no stored object at pipelines\/.+\/asset\/.+\.mp4$/);
    expect(failed.metadata!.retries ?? 0).toBe(0);
  });
});
