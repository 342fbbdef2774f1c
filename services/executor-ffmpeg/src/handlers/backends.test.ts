/**
 * Backend parity: the merge, mix and compose scenarios on three setups, with the same inputs:
 *   local  - local disk storage, this process's ffmpeg;
 *   s3     - STORAGE=s3 against a local S3 server (s3rver), this process's ffmpeg;
 *   lambda - S3 as above, FFMPEG_BACKEND=lambda: the real Lambda client invokes the three functions through
 *            the local Invoke endpoint, which runs the lambdas/ handlers on the same bucket.
 * The outputs are compared byte for byte (ffmpeg and x264 are deterministic for the same input and
 * arguments) and by probe.
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { RetryAfterError } from "@vp/bus";
import type { NodeOutput, SerializedNode } from "@vp/contracts";
import { makeSpeechClip, makeTestClip, probe, type ProbeResult } from "@vp/media";
import { outputKey, type Storage } from "@vp/storage";
import { startTestS3, type TestS3 } from "@vp/storage/testing";
import { createHandler as createAudioMixer } from "../../../../lambdas/audio-mixer/handler";
import { startLocalLambda, type LocalLambda } from "../../../../lambdas/local-invoke/server";
import { createHandler as createVideoComposer } from "../../../../lambdas/video-composer/handler";
import { createHandler as createVideoMerger } from "../../../../lambdas/video-merger/handler";
import type { FfmpegWorkOptions } from "./common";
import { WorkInputError } from "./errors";
import { createComposeVideoWork } from "./compose-video";
import { createLambdaInvoker, LambdaFunctionError } from "./lambda";
import { createMergeVideosWork } from "./merge-videos";
import { createMixAudioWork } from "./mix-audio";
import { createHandlerFixture, PIPELINE, type HandlerFixture } from "./test-fixture";
import type { WorkFunction } from "./types";

type Setup = "local" | "s3" | "lambda";
const SETUPS: Setup[] = ["local", "s3", "lambda"];

let s3: TestS3;
let lambda: LocalLambda;
let client: LambdaClient;
const fixtures = {} as Record<Setup, HandlerFixture>;
const options = {} as Record<Setup, FfmpegWorkOptions>;
/** The upstream nodes, identical bytes in every setup's storage. */
const inputs = {} as Record<Setup, Record<string, SerializedNode>>;

async function storeInputs(f: HandlerFixture, files: Record<string, { path: string; output: Omit<NodeOutput, "s3Key"> }>) {
  const nodes: Record<string, SerializedNode> = {};
  for (const [id, { path, output }] of Object.entries(files)) {
    const key = outputKey(PIPELINE, id, "j", path.endsWith(".wav") ? "wav" : "mp4");
    await f.storage.putFile(key, path);
    nodes[id] = f.completed(id, { ...output, s3Key: key } as NodeOutput);
  }
  return nodes;
}

beforeAll(async () => {
  s3 = await startTestS3();
  const lambdaStorage: Storage = s3.storage("backends");
  fixtures.local = await createHandlerFixture();
  fixtures.s3 = await createHandlerFixture({ storage: s3.storage("backends") });
  fixtures.lambda = await createHandlerFixture({ storage: lambdaStorage });
  const tmpRoot = fixtures.lambda.dir;
  lambda = await startLocalLambda({
    "video-merger": createVideoMerger({ storage: lambdaStorage, tmpRoot }),
    "audio-mixer": createAudioMixer({ storage: lambdaStorage, tmpRoot }),
    "video-composer": createVideoComposer({ storage: lambdaStorage, tmpRoot }),
  });
  client = new LambdaClient({ endpoint: lambda.endpoint, region: "us-east-1", credentials: { accessKeyId: "test", secretAccessKey: "test" }, maxAttempts: 1 });
  options.local = { ffmpegTimeoutMs: 60_000 };
  options.s3 = { ffmpegTimeoutMs: 60_000 };
  options.lambda = { ffmpegTimeoutMs: 60_000, defaultBackend: "lambda", lambda: createLambdaInvoker({ client }) };

  const dir = fixtures.local.dir;
  const clip = (name: string) => join(dir, name);
  await Promise.all([
    makeTestClip({ path: clip("a.mp4"), durationSeconds: 2, width: 320, height: 240, fps: 30 }),
    makeTestClip({ path: clip("b.mp4"), durationSeconds: 1.5, width: 320, height: 240, fps: 30, color: "#336699" }),
    makeTestClip({ path: clip("c.mp4"), durationSeconds: 1, width: 256, height: 144, fps: 30 }),
    makeTestClip({ path: clip("bg.mp4"), durationSeconds: 2, width: 1280, height: 720, fps: 25 }),
    makeTestClip({ path: clip("ov.mp4"), durationSeconds: 2, width: 640, height: 360, fps: 25, color: "red" }),
    makeTestClip({ path: clip("v4.mp4"), durationSeconds: 4, width: 320, height: 240, fps: 30 }),
    makeSpeechClip({ path: clip("voice.wav"), text: "The same voice on every backend.", durationSeconds: 3, workDir: dir }),
  ]);
  const video = (d: number, w: number, h: number) => ({
    type: "video" as const,
    duration: d,
    width: w,
    height: h,
    videoCodec: "h264",
    audioCodec: "aac",
    contentType: "video/mp4",
  });
  for (const setup of SETUPS) {
    inputs[setup] = await storeInputs(fixtures[setup], {
      a: { path: clip("a.mp4"), output: video(2, 320, 240) },
      b: { path: clip("b.mp4"), output: video(1.5, 320, 240) },
      c: { path: clip("c.mp4"), output: video(1, 256, 144) },
      bg: { path: clip("bg.mp4"), output: video(2, 1280, 720) },
      ov: { path: clip("ov.mp4"), output: video(2, 640, 360) },
      v4: { path: clip("v4.mp4"), output: video(4, 320, 240) },
      voice: { path: clip("voice.wav"), output: { type: "audio", duration: 3, audioCodec: "pcm_s16le", contentType: "audio/wav" } },
    });
  }
});
afterAll(async () => {
  client?.destroy();
  await lambda?.close();
  await s3?.close();
  for (const f of Object.values(fixtures)) await f.cleanup();
});

interface Outcome {
  output: NodeOutput;
  cost: number;
  md5: string;
  probe: ProbeResult;
}

async function runEverywhere(
  id: string,
  create: (o: FfmpegWorkOptions) => WorkFunction,
  node: (f: HandlerFixture) => SerializedNode,
  slots: (n: Record<string, SerializedNode>) => Record<string, SerializedNode[]>,
): Promise<Record<Setup, Outcome>> {
  const outcomes = {} as Record<Setup, Outcome>;
  for (const setup of SETUPS) {
    const f = fixtures[setup];
    const { ctx } = await f.context(node(f), slots(inputs[setup]));
    const { output, cost } = await create(options[setup])(ctx);
    const local = join(f.dir, `${id}-${setup}.mp4`);
    await f.storage.download(output.s3Key, local);
    outcomes[setup] = {
      output,
      cost,
      md5: createHash("md5")
        .update(await readFile(local))
        .digest("hex"),
      probe: await probe(local),
    };
  }
  return outcomes;
}

function expectSameEverywhere(o: Record<Setup, Outcome>) {
  const describeOutput = (x: Outcome) => {
    const { s3Key: _key, ...rest } = x.output;
    return rest;
  };
  for (const setup of ["s3", "lambda"] as const) {
    expect(o[setup].md5, `${setup} output bytes`).toBe(o.local.md5);
    expect(o[setup].probe).toEqual(o.local.probe);
    expect(describeOutput(o[setup])).toEqual(describeOutput(o.local));
  }
  // Local work is free by default; the Lambda reports its GB-seconds.
  expect(o.local.cost).toBe(0);
  expect(o.s3.cost).toBe(0);
  expect(o.lambda.cost).toBeGreaterThan(0);
  expect(lambda.invocations.at(-1)?.ok).toBe(true);
}

describe("the same scenarios on local disk, on S3, and on Lambda + S3", () => {
  it("merge-videos: a stream copy and a re-encode", async () => {
    const copy = await runEverywhere(
      "merge-copy",
      createMergeVideosWork,
      (f) => f.node("mc", "merge-videos"),
      (n) => ({ segments: [n.a!, n.b!, n.a!] }),
    );
    expect(copy.local.output).toMatchObject({ strategy: "copy" });
    expect(Math.abs(copy.local.output.duration! - 5.5)).toBeLessThanOrEqual(0.1);
    expectSameEverywhere(copy);
    const reencode = await runEverywhere(
      "merge-reencode",
      createMergeVideosWork,
      (f) => f.node("mr", "merge-videos"),
      (n) => ({ segments: [n.a!, n.c!] }),
    );
    expect(reencode.local.output).toMatchObject({ strategy: "reencode", width: 320, height: 240 });
    expectSameEverywhere(reencode);
    expect(lambda.invocations.filter((i) => i.functionName === "video-merger")).toHaveLength(2);
  });

  it("mix-audio: a 3.0 s voice over a 4.0 s video, padded", async () => {
    const mixed = await runEverywhere(
      "mix",
      createMixAudioWork,
      (f) => f.node("mx", "mix-audio", { config: { lengthMismatch: "pad" } }),
      (n) => ({
        video: [n.v4!],
        audio: [n.voice!],
      }),
    );
    expect(Math.abs(mixed.local.output.duration! - 4)).toBeLessThanOrEqual(0.05);
    expectSameEverywhere(mixed);
  });

  it("compose-video: an overlay at bottom-right over a 1280x720 background", async () => {
    const composed = await runEverywhere(
      "compose",
      createComposeVideoWork,
      (f) => f.node("cv", "compose-video", { config: { overlays: [{ position: "bottom-right", size: 0.25, cornerRadius: 12 }] } }),
      (n) => ({ background: [n.bg!], overlays: [n.ov!] }),
    );
    expect(composed.local.output).toMatchObject({ width: 1280, height: 720 });
    expectSameEverywhere(composed);
  });

  it("a Lambda function error fails the node with the function's reason", async () => {
    const f = fixtures.lambda;
    // An upstream that says "video" without probed fields, whose file is the voice: only the function can tell.
    const voiceAsVideo = f.completed("fake", { type: "video", s3Key: inputs.lambda.voice!.output!.s3Key });
    const { ctx } = await f.context(f.node("bad", "mix-audio"), { video: [voiceAsVideo], audio: [inputs.lambda.voice!] });
    await expect(createMixAudioWork(options.lambda)(ctx)).rejects.toThrow(new WorkInputError("Lambda error: the video input has no video stream"));
  });
});

describe("Lambda work that does not fit or keeps failing runs here", () => {
  it("a function that times out, then is killed for memory: the first attempt fails to be retried; from LAMBDA_LOCAL_FALLBACK_AFTER the attempt runs on local ffmpeg", async () => {
    const f = fixtures.lambda;
    const fallback: FfmpegWorkOptions = { ...options.lambda, lambdaLocalFallbackAfter: 2 };
    const node = f.node("mix-fallback", "mix-audio");
    const slots = { video: [inputs.lambda.v4!], audio: [inputs.lambda.voice!] };
    lambda.fail("audio-mixer", { kind: "timeout" }, { kind: "oom" });

    const first = await f.context(node, slots);
    const error = await createMixAudioWork(fallback)(first.ctx).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LambdaFunctionError);
    expect(error).not.toBeInstanceOf(WorkInputError);
    expect((error as LambdaFunctionError).errorType).toBe("Sandbox.Timedout");

    const second = await f.context(node, slots);
    const invoked = lambda.invocations.length;
    const { output, cost } = await createMixAudioWork(fallback)({ ...second.ctx, attempt: 2 });
    expect(lambda.invocations.length).toBe(invoked + 1);
    expect(lambda.invocations.at(-1)).toMatchObject({ functionName: "audio-mixer", ok: false });
    // Made here: local ffmpeg costs nothing in this setup, a function invocation always does.
    expect(cost).toBe(0);
    expect(output).toMatchObject({ type: "video", videoCodec: "h264", audioCodec: "aac" });
    expect(await f.storage.stat(output.s3Key)).not.toBeNull();
  });

  it("without the fallback setting, every attempt stays on Lambda (the job is retried until its attempts run out)", async () => {
    const f = fixtures.lambda;
    lambda.fail("audio-mixer", { kind: "oom" });
    const { ctx } = await f.context(f.node("mix-no-fallback", "mix-audio"), { video: [inputs.lambda.v4!], audio: [inputs.lambda.voice!] });
    await expect(createMixAudioWork(options.lambda)({ ...ctx, attempt: 5 })).rejects.toBeInstanceOf(LambdaFunctionError);
  });

  it("inputs longer or larger than the function takes run locally without invoking it", async () => {
    const f = fixtures.lambda;
    const invoked = lambda.invocations.length;
    const long = await f.context(f.node("merge-long", "merge-videos"), { segments: [inputs.lambda.a!, inputs.lambda.b!] });
    const merged = await createMergeVideosWork({ ...options.lambda, lambdaMaxInputSeconds: 3 })(long.ctx);
    expect(merged.cost).toBe(0);
    const big = await f.context(f.node("compose-big", "compose-video"), { background: [inputs.lambda.bg!], overlays: [inputs.lambda.ov!] });
    const sized = { ...inputs.lambda.bg!, output: { ...inputs.lambda.bg!.output!, size: 5 * 1024 ** 3 } } as SerializedNode;
    const composed = await createComposeVideoWork(options.lambda)({ ...big.ctx, inputs: { background: [sized], overlays: [inputs.lambda.ov!] } });
    expect(composed.cost).toBe(0);
    expect(lambda.invocations.length).toBe(invoked);
  });
});

describe("an invocation outlives the attempt that sent it", () => {
  it("a later attempt waits for the running invocation's output and adopts it instead of invoking again", async () => {
    const f = fixtures.lambda;
    const node = f.node("mix-adopt", "mix-audio");
    const slots = { video: [inputs.lambda.v4!], audio: [inputs.lambda.voice!] };
    // What the job runner records, kept on the node as the state-writer would.
    const metadata: Record<string, unknown> = {};
    const stopped = new AbortController();
    const first = await f.context(node, slots, stopped.signal);
    const recorder = (attempt: number) => async (r: { provider: string; phase: string; providerJobId?: string; clientRef?: string }) => {
      metadata.providerJob = { ...r, attempt, at: new Date().toISOString() };
      if (r.providerJobId) metadata.providerJobId = r.providerJobId;
      return metadata;
    };
    lambda.fail("audio-mixer", { kind: "slow", delayMs: 2500 });
    const invoked = lambda.invocations.length;

    // Attempt 1 invokes; its executor stops (the request is dropped) while the function runs on.
    const running = createMixAudioWork(options.lambda)({ ...first.ctx, recordProviderJob: recorder(1) as never }).catch((e: unknown) => e);
    await new Promise((r) => setTimeout(r, 500));
    stopped.abort();
    expect(await running).toBeInstanceOf(Error);
    expect(metadata.providerJob).toMatchObject({ provider: "lambda", phase: "creating", attempt: 1 });

    // Attempt 2, while the function still runs: no second invocation, a wait.
    const second = { ...first.ctx, signal: new AbortController().signal, attempt: 2, node: { ...node, metadata }, recordProviderJob: recorder(2) as never };
    const waiting = await createMixAudioWork(options.lambda)(second).catch((e: unknown) => e);
    expect(waiting).toBeInstanceOf(RetryAfterError);
    expect((waiting as Error).message).toMatch(
      /^the audio-mixer invocation of attempt 1 may still be running \(\d+ s so far\): waiting for its output instead of invoking again$/,
    );

    // Attempt 3, once the function has stored its output: adopted, with its facts and an estimated cost.
    const key1 = outputKey(PIPELINE, node.id, first.ctx.job.jobId, "mp4", 1);
    for (let i = 0; i < 100 && !(await f.storage.stat(key1)); i++) await new Promise((r) => setTimeout(r, 100));
    const third = { ...second, attempt: 3, recordProviderJob: recorder(3) as never };
    const adopted = await createMixAudioWork(options.lambda)(third);
    expect(adopted.output).toMatchObject({ s3Key: key1, type: "video", videoCodec: "h264", audioCodec: "aac" });
    expect(adopted.output.duration).toBeCloseTo(4, 0);
    expect(adopted.cost).toBeGreaterThan(0);
    expect(lambda.invocations.length - invoked).toBe(1);
  });

  it("a cancel keeps the request until the function answers, then deletes what it stored; a shutdown still drops the request", async () => {
    const f = fixtures.lambda;
    const node = f.node("mix-cancel", "mix-audio");
    const slots = { video: [inputs.lambda.v4!], audio: [inputs.lambda.voice!] };
    const recorded: string[] = [];
    const record = async (r: { phase: string }) => {
      recorded.push(r.phase);
      return {};
    };
    // As the job runner builds it: the work's signal aborts on a cancel too, and `cancelled` says which it was.
    const run = async (abortWith: "cancel" | "shutdown") => {
      const shutdown = new AbortController();
      const cancel = new AbortController();
      const { ctx } = await f.context(node, slots, AbortSignal.any([shutdown.signal, cancel.signal]));
      const key = outputKey(PIPELINE, node.id, ctx.job.jobId, "mp4", 1);
      lambda.fail("audio-mixer", { kind: "slow", delayMs: 2000 });
      const invoked = lambda.invocations.length;
      const startedAt = Date.now();
      const work = createMixAudioWork(options.lambda)({ ...ctx, cancelled: cancel.signal, recordProviderJob: record as never }).catch((e: unknown) => e);
      await new Promise((r) => setTimeout(r, 400));
      (abortWith === "cancel" ? cancel : shutdown).abort(new Error(`${abortWith} by the test`));
      const error = await work;
      return { error, key, ms: Date.now() - startedAt, invocations: lambda.invocations.length - invoked };
    };

    const cancelled = await run("cancel");
    expect((cancelled.error as Error).message).toBe("cancel by the test");
    // It waited for the function (about its 2 s) instead of returning at the cancel, and then deleted the output.
    expect(cancelled.ms).toBeGreaterThanOrEqual(1800);
    expect(cancelled.invocations).toBe(1);
    expect(await f.storage.stat(cancelled.key)).toBeNull();
    expect(recorded).toEqual(["creating"]);

    recorded.length = 0;
    const stopped = await run("shutdown");
    expect(stopped.ms).toBeLessThan(1500);
    expect(recorded).toEqual(["creating"]);
    // The dropped invocation runs on and stores its output, which a later attempt adopts.
    for (let i = 0; i < 100 && !(await f.storage.stat(stopped.key)); i++) await new Promise((r) => setTimeout(r, 100));
    expect(await f.storage.stat(stopped.key)).not.toBeNull();
  });

  it("an invocation Lambda answered with an error is over: the next attempt invokes again at once", async () => {
    const f = fixtures.lambda;
    const node = f.node("mix-ended", "mix-audio");
    const slots = { video: [inputs.lambda.v4!], audio: [inputs.lambda.voice!] };
    const metadata: Record<string, unknown> = {};
    const recorder = (attempt: number) => async (r: { provider: string; phase: string; providerJobId?: string }) => {
      metadata.providerJob = { ...r, attempt, at: new Date().toISOString() };
      if (r.providerJobId) metadata.providerJobId = r.providerJobId;
      return metadata;
    };
    lambda.fail("audio-mixer", { kind: "timeout" });
    const first = await f.context(node, slots);
    await expect(createMixAudioWork(options.lambda)({ ...first.ctx, recordProviderJob: recorder(1) as never })).rejects.toBeInstanceOf(LambdaFunctionError);
    expect(metadata.providerJob).toMatchObject({ provider: "lambda", phase: "refused", attempt: 1 });
    const second = { ...first.ctx, attempt: 2, node: { ...node, metadata }, recordProviderJob: recorder(2) as never };
    const { output } = await createMixAudioWork(options.lambda)(second);
    expect(output.s3Key).toBe(outputKey(PIPELINE, node.id, first.ctx.job.jobId, "mp4", 2));
    expect(metadata).toMatchObject({ providerJob: { phase: "created", attempt: 2 }, providerJobId: output.s3Key });
  });
});
