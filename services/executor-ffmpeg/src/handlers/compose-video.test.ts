import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { SerializedNode } from "@vp/contracts";
import { decodeFrame, probe, regionDifference } from "@vp/media";
import { outputKey } from "@vp/storage";
import { createComposeVideoWork } from "./compose-video";
import { WorkInputError } from "./errors";
import { createHandlerFixture, descendantsOf, PIPELINE, stillRunning, type HandlerFixture } from "./test-fixture";

let f: HandlerFixture;
let background: SerializedNode, overlay: SerializedNode, long: SerializedNode;
const FULL = { width: 1280, height: 720 };

beforeAll(async () => {
  f = await createHandlerFixture();
  const [bgKey, ovKey, longKey] = await Promise.all([
    f.storeClip(outputKey(PIPELINE, "bg", "j", "mp4"), { durationSeconds: 2, width: 1280, height: 720, fps: 25 }),
    f.storeClip(outputKey(PIPELINE, "ov", "j", "mp4"), { durationSeconds: 2, width: 640, height: 360, fps: 25, color: "#ff00ff" }),
    f.storeClip(outputKey(PIPELINE, "long", "j", "mp4"), { durationSeconds: 20, width: 640, height: 360, fps: 25 }),
  ]);
  background = f.completed("bg", {
    type: "video",
    s3Key: bgKey,
    duration: 2,
    width: 1280,
    height: 720,
    videoCodec: "h264",
    audioCodec: "aac",
    contentType: "video/mp4",
  });
  overlay = f.completed("ov", {
    type: "video",
    s3Key: ovKey,
    duration: 2,
    width: 640,
    height: 360,
    videoCodec: "h264",
    audioCodec: "aac",
    contentType: "video/mp4",
  });
  long = f.completed("long", {
    type: "video",
    s3Key: longKey,
    duration: 20,
    width: 640,
    height: 360,
    videoCodec: "h264",
    audioCodec: "aac",
    contentType: "video/mp4",
  });
});
afterAll(async () => {
  await f?.cleanup();
});

describe("compose-video work", () => {
  const work = createComposeVideoWork({ ffmpegTimeoutMs: 60_000 });

  it("lays a 640x360 overlay at bottom-right, 25 % wide, over a 1280x720 background", async () => {
    const config = { overlays: [{ position: "bottom-right", size: 0.25 }] };
    const { ctx, progress, jobId } = await f.context(f.node("pip", "compose-video", { config }), { background: [background], overlays: [overlay] });
    const { output, cost } = await work(ctx);
    expect(output).toMatchObject({
      type: "video",
      s3Key: outputKey(PIPELINE, "pip", jobId, "mp4", 1),
      width: 1280,
      height: 720,
      videoCodec: "h264",
      audioCodec: "aac",
    });
    expect(Math.abs(output.duration! - 2)).toBeLessThanOrEqual(0.05);
    expect(cost).toBe(0);

    const composed = join(f.dir, "composed.mp4");
    const plain = join(f.dir, "background.mp4");
    await f.storage.download(output.s3Key, composed);
    await f.storage.download(background.output!.s3Key, plain);
    expect((await probe(composed)).video?.fps).toBe(25);
    const [withOverlay, backgroundOnly] = await Promise.all([decodeFrame(composed, 1, FULL), decodeFrame(plain, 1, FULL)]);
    const box = { x: 942, y: 522, width: 320, height: 180 };
    expect(regionDifference(withOverlay, backgroundOnly, box)).toBeGreaterThan(40);
    expect(regionDifference(withOverlay, backgroundOnly, { x: 0, y: 0, width: 900, height: 500 })).toBeLessThan(6);
    expect(progress.at(-1)).toBeGreaterThanOrEqual(90);
  });

  it("fails at once without an overlay, or with more overlay settings than overlays", async () => {
    const { ctx } = await f.context(f.node("c1", "compose-video"), { background: [background], overlays: [] });
    await expect(work(ctx)).rejects.toThrow(new WorkInputError("compose-video has no overlay: connect at least one video to overlays"));
    const { ctx: ctx2 } = await f.context(f.node("c2", "compose-video", { config: { overlays: [{}, {}] } }), { background: [background], overlays: [overlay] });
    await expect(work(ctx2)).rejects.toThrow(/config.overlays describes 2 overlays, but only 1 are connected/);
    const { ctx: ctx3 } = await f.context(f.node("c3", "compose-video", { config: { overlays: [{ borderColor: "red;drawtext" }] } }), {
      background: [background],
      overlays: [overlay],
    });
    await expect(work(ctx3)).rejects.toThrow(/^compose-video config is invalid: overlays.0.borderColor/);
    expect(await readdir(ctx.workDir)).toEqual([]);
  });

  it("a cancelled compose leaves no ffmpeg behind", async () => {
    const controller = new AbortController();
    const { ctx, progress } = await f.context(f.node("c4", "compose-video"), { background: [long], overlays: [overlay] }, controller.signal);
    const run = work(ctx).catch((e: unknown) => e);
    let seen: Awaited<ReturnType<typeof descendantsOf>> = [];
    const deadline = Date.now() + 20_000;
    while (!seen.some((p) => p.comm === "ffmpeg")) {
      if (Date.now() > deadline) throw new Error("ffmpeg never started");
      seen = await descendantsOf(process.pid);
      await new Promise((r) => setTimeout(r, 20));
    }
    while (!progress.some((p) => p > 15)) await new Promise((r) => setTimeout(r, 20));
    controller.abort(new Error("cancelled by the test"));
    const error = (await run) as Error;
    expect(error.name).toBe("CancelledError");
    const ffmpegs = seen.filter((p) => p.comm === "ffmpeg").map((p) => p.pid);
    expect(ffmpegs.length).toBeGreaterThan(0);
    expect(await stillRunning(ffmpegs)).toEqual([]);
    expect((await descendantsOf(process.pid)).filter((p) => p.comm === "ffmpeg")).toEqual([]);
    expect(await readdir(ctx.workDir)).not.toContain("output.mp4");
  });
});
