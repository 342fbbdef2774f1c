import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { NodeOutput, SerializedNode } from "@vp/contracts";
import { audioLevel, makeSpeechClip, streamSummary } from "@vp/media";
import { outputKey } from "@vp/storage";
import { WorkInputError } from "./errors";
import { createMixAudioWork } from "./mix-audio";
import { createHandlerFixture, PIPELINE, type HandlerFixture } from "./test-fixture";

let f: HandlerFixture;
let video: SerializedNode, voice: SerializedNode, silentVideo: SerializedNode;

beforeAll(async () => {
  f = await createHandlerFixture();
  const videoKey = await f.storeClip(outputKey(PIPELINE, "v", "j", "mp4"), { durationSeconds: 4, width: 320, height: 240, fps: 30 });
  const silentKey = await f.storeClip(outputKey(PIPELINE, "sv", "j", "mp4"), { durationSeconds: 2, width: 320, height: 240, fps: 30, audio: false });
  const voicePath = join(f.dir, "voice.m4a");
  await makeSpeechClip({ path: voicePath, text: "Picture in picture, mixed and merged, in three seconds.", durationSeconds: 3, workDir: f.dir });
  const voiceKey = outputKey(PIPELINE, "a", "j", "m4a");
  await f.storage.putFile(voiceKey, voicePath);
  video = f.completed("v", { type: "video", s3Key: videoKey, duration: 4, videoCodec: "h264", audioCodec: "aac", contentType: "video/mp4" });
  silentVideo = f.completed("sv", { type: "video", s3Key: silentKey, duration: 2, videoCodec: "h264", contentType: "video/mp4" });
  voice = f.completed("a", { type: "audio", s3Key: voiceKey, duration: 3, audioCodec: "aac", contentType: "audio/mp4" });
});
afterAll(async () => {
  await f?.cleanup();
});

describe("mix-audio work", () => {
  const work = createMixAudioWork({ ffmpegTimeoutMs: 60_000 });

  it("replaces a 4.0 s video's tone with a 3.0 s voice, padded to 4.0 s", async () => {
    const { ctx, progress, jobId } = await f.context(f.node("mix", "mix-audio", { config: { lengthMismatch: "pad" } }), { video: [video], audio: [voice] });
    const { output, cost } = await work(ctx);
    expect(output).toMatchObject({
      type: "video",
      s3Key: outputKey(PIPELINE, "mix", jobId, "mp4", 1),
      width: 320,
      height: 240,
      videoCodec: "h264",
      audioCodec: "aac",
    });
    expect(Math.abs(output.duration! - 4)).toBeLessThanOrEqual(0.05);
    expect(cost).toBe(0);
    const local = join(f.dir, "mixed.mp4");
    await f.storage.download(output.s3Key, local);
    expect((await streamSummary(local)).map((s) => s.type)).toEqual(["video", "audio"]);
    expect((await audioLevel(local, 0, 3)).meanDb).toBeGreaterThan(-45);
    expect((await audioLevel(local, 3.1, 0.85)).maxDb).toBeLessThan(-80);
    expect(progress.at(-1)).toBeGreaterThanOrEqual(90);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    for (const name of await readdir(ctx.workDir)) expect(name).toMatch(/^(video\.mp4|audio\.m4a|output\.mp4)$/);
  });

  it("checks the media contract before any work: an audio input that is a video, a video input that is audio", async () => {
    const asAudio = f.completed("va", { type: "video", s3Key: video.output!.s3Key, videoCodec: "h264", audioCodec: "aac" });
    const { ctx } = await f.context(f.node("m1", "mix-audio"), { video: [video], audio: [asAudio] });
    await expect(work(ctx)).rejects.toThrow(new WorkInputError('input "audio": node "va" produces video, but audio needs an audio file'));
    expect(await readdir(ctx.workDir)).toEqual([]);

    // An "audio" upstream whose probe found only video, and a "video" upstream that is really audio.
    const mute = f.completed("mute", { type: "audio", s3Key: silentVideo.output!.s3Key, videoCodec: "h264" } as NodeOutput);
    const { ctx: ctx2 } = await f.context(f.node("m2", "mix-audio"), { video: [video], audio: [mute] });
    await expect(work(ctx2)).rejects.toThrow(new WorkInputError('input "audio": node "mute" has no audio stream'));
    const fake = f.completed("fake", { type: "video", s3Key: voice.output!.s3Key, audioCodec: "aac" });
    const { ctx: ctx3 } = await f.context(f.node("m3", "mix-audio"), { video: [fake], audio: [voice] });
    await expect(work(ctx3)).rejects.toThrow(new WorkInputError('input "video": node "fake" is an audio file, but video needs a video'));
    // Unprobed upstream outputs are checked on the downloaded file instead.
    const unprobed = f.completed("up", { type: "video", s3Key: voice.output!.s3Key, contentType: "audio/mp4" });
    const { ctx: ctx4 } = await f.context(f.node("m4", "mix-audio"), { video: [unprobed], audio: [voice] });
    await expect(work(ctx4)).rejects.toThrow(/^input "video" \(node "up"\): expected a video file but it has no video stream$/);
  });

  it("rejects a config mistake and a missing input with the reason", async () => {
    const { ctx } = await f.context(f.node("m5", "mix-audio", { config: { lengthMismatch: "stretch" } }), { video: [video], audio: [voice] });
    await expect(work(ctx)).rejects.toThrow(/^mix-audio config is invalid: lengthMismatch/);
    const { ctx: ctx2 } = await f.context(f.node("m6", "mix-audio"), { video: [video] });
    await expect(work(ctx2)).rejects.toThrow(new WorkInputError('input "audio" is missing'));
    const { ctx: ctx3 } = await f.context(f.node("m7", "mix-audio", { config: { provider: "lambda" } }), { video: [video], audio: [voice] });
    await expect(work(ctx3)).rejects.toThrow(/set to run on Lambda, but this executor has no Lambda backend/);
  });

  it("ducks the original under the voice, and trims to the shorter input", async () => {
    const { ctx } = await f.context(f.node("m8", "mix-audio", { config: { mode: "duck", originalGain: 0.3, lengthMismatch: "trim" } }), {
      video: [video],
      audio: [voice],
    });
    const { output } = await work(ctx);
    expect(Math.abs(output.duration! - 3)).toBeLessThanOrEqual(0.1);
  });

  it("starts the voice at its offset with a fade-in, and refuses an offset past the video's end", async () => {
    const config = { startSeconds: 0.5, fadeInSeconds: 0.3, lengthMismatch: "trim" };
    const { ctx } = await f.context(f.node("m9", "mix-audio", { config }), { video: [video], audio: [voice] });
    const { output } = await work(ctx);
    // Trim: the 3.0 s voice starting at 0.5 s ends at 3.5 s, before the 4.0 s video does.
    expect(Math.abs(output.duration! - 3.5)).toBeLessThanOrEqual(0.1);
    const local = join(f.dir, "offset.mp4");
    await f.storage.download(output.s3Key, local);
    expect((await audioLevel(local, 0, 0.45)).maxDb).toBeLessThan(-80);
    expect((await audioLevel(local, 0.9, 2)).meanDb).toBeGreaterThan(-45);

    const { ctx: late } = await f.context(f.node("m10", "mix-audio", { config: { startSeconds: 5 } }), { video: [video], audio: [voice] });
    await expect(work(late)).rejects.toThrow(/the audio would start at 5 s, but the video lasts 4\.\d\d s: choose a start offset inside the video/);
  });
});
