import { join } from "node:path";
import { readdir } from "node:fs/promises";
import type { NodeOutput, SerializedNode } from "@vp/contracts";
import { probe } from "@vp/media";
import { outputKey } from "@vp/storage";
import { createMergeVideosWork } from "./merge-videos";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { WorkInputError } from "./errors";
import { createHandlerFixture, PIPELINE, type HandlerFixture } from "./test-fixture";

let f: HandlerFixture;
beforeAll(async () => {
  f = await createHandlerFixture();
});
afterAll(async () => {
  await f.cleanup();
});

describe("merge-videos work", () => {
  const work = createMergeVideosWork({ ffmpegTimeoutMs: 60_000, costPerCpuSecond: 0.0001 });
  let s1: SerializedNode, s2: SerializedNode, s3: SerializedNode;

  beforeAll(async () => {
    const [k1, k2, k3] = await Promise.all([
      f.storeClip(outputKey(PIPELINE, "s1", "j", "mp4"), { durationSeconds: 2, width: 320, height: 240, fps: 30 }),
      f.storeClip(outputKey(PIPELINE, "s2", "j", "mp4"), { durationSeconds: 1.5, width: 320, height: 240, fps: 30, color: "blue" }),
      f.storeClip(outputKey(PIPELINE, "s3", "j", "mp4"), { durationSeconds: 3, width: 640, height: 360, fps: 25, audio: false }),
    ]);
    [s1, s2, s3] = [f.completedVideo("s1", k1), f.completedVideo("s2", k2), f.completedVideo("s3", k3)];
  });

  it("merges segments in order, re-encoding mixed formats, and stores the result", async () => {
    const target = f.node("m1", "merge-videos", { inputs: { segments: ["s1", "s2", "s3"] } });
    const { ctx, progress, jobId } = await f.context(target, { segments: [s1, s2, s3] });
    const { output, cost } = await work(ctx);
    expect(output).toMatchObject({
      type: "video",
      s3Key: outputKey(PIPELINE, "m1", jobId, "mp4", 1),
      width: 320,
      height: 240,
      videoCodec: "h264",
      audioCodec: "aac",
      contentType: "video/mp4",
      strategy: "reencode",
    });
    expect(Math.abs(output.duration! - 6.5)).toBeLessThanOrEqual(0.1);
    expect(output.size).toBe((await f.storage.stat(output.s3Key))!.size);
    // CPU-seconds of the re-encode at the configured rate (a few tenths of a second here).
    expect(cost).toBeGreaterThan(0);
    expect(cost).toBeLessThan(0.001);
    expect(Number(cost.toFixed(6))).toBe(cost);
    expect(progress.length).toBeGreaterThan(2);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));

    // The stored output is a real, playable MP4.
    const local = join(f.dir, "merged-check.mp4");
    await f.storage.download(output.s3Key, local);
    expect((await probe(local)).video?.codec).toBe("h264");
    // Only generated names ever sat in the work directory.
    for (const name of await readdir(ctx.workDir)) expect(name).toMatch(/^(seg-\d{3}\.mp4|output\.mp4|concat\.txt|concat-\d{3}\.mp4)$/);
  });

  it("stream-copies compatible segments and honours config.reencode = always", async () => {
    const target = f.node("m2", "merge-videos");
    const { ctx } = await f.context(target, { segments: [s1, s2, s1] });
    // Without a configured rate local work is free.
    const { output, cost } = await createMergeVideosWork()(ctx);
    expect(cost).toBe(0);
    expect(output.strategy).toBe("copy");
    expect(Math.abs(output.duration! - 5.5)).toBeLessThanOrEqual(0.1);

    const forced = f.node("m3", "merge-videos", { config: { reencode: "always", width: 160, height: 120, fps: 15 } });
    const { ctx: ctx2 } = await f.context(forced, { segments: [s1, s2] });
    const { output: out2 } = await work(ctx2);
    expect(out2).toMatchObject({ strategy: "reencode", width: 160, height: 120 });
  });

  it("names the segment that has no completed video output", async () => {
    const pending = f.node("s9", "asset");
    const { ctx } = await f.context(f.node("m4", "merge-videos"), { segments: [s1, pending] });
    await expect(work(ctx)).rejects.toThrow(new WorkInputError('segment "s9" has no completed video output'));

    const text = f.node("t9", "asset", { status: "completed", output: { type: "text", s3Key: "pipelines/p1/x.txt" } as NodeOutput });
    const { ctx: ctx2 } = await f.context(f.node("m5", "merge-videos"), { segments: [text, s1] });
    await expect(work(ctx2)).rejects.toThrow(/segment "t9"/);
  });

  it("fails a segment whose stored file is not media, naming it", async () => {
    const key = outputKey(PIPELINE, "bad", "j", "mp4");
    await f.storage.put(key, Buffer.alloc(3000, 9));
    const { ctx } = await f.context(f.node("m6", "merge-videos"), { segments: [s1, f.completedVideo("bad", key)] });
    const error = await work(ctx).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(WorkInputError);
    expect((error as Error).message).toMatch(/^segment "bad": not a readable media file/);
  });

  it("rejects an invalid config before any work", async () => {
    const { ctx } = await f.context(f.node("m7", "merge-videos", { config: { reencode: "sometimes" } }), { segments: [s1, s2] });
    await expect(work(ctx)).rejects.toThrow(/^merge-videos config is invalid: reencode/);
  });

  it("stops ffmpeg on abort and does not call that an input error", async () => {
    const long = await f.storeClip(outputKey(PIPELINE, "long", "j", "mp4"), { durationSeconds: 20, width: 320, height: 240, fps: 30 });
    const controller = new AbortController();
    const { ctx, progress } = await f.context(
      f.node("m8", "merge-videos", { config: { reencode: "always" } }),
      {
        segments: [f.completedVideo("long", long), s1],
      },
      controller.signal,
    );
    const run = work(ctx);
    const abortWhenMerging = setInterval(() => {
      if (progress.some((p) => p > 10)) controller.abort();
    }, 20);
    try {
      const error = await run.catch((e: unknown) => e);
      expect((error as Error).name).toBe("CancelledError");
      expect(error).not.toBeInstanceOf(WorkInputError);
    } finally {
      clearInterval(abortWhenMerging);
    }
    expect(await readdir(ctx.workDir)).not.toContain("ffmpeg.pid");
  });
});
