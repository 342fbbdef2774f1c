import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { audioLevel, makeSpeechClip, makeTestClip, streamSummary } from "@vp/media";
import { NotFoundError, type Storage } from "@vp/storage";
import { startTestS3, type TestS3 } from "@vp/storage/testing";
import { LambdaInputError } from "../shared/runtime";
import { AudioMixerEventError, createHandler } from "./handler";

let dir: string;
let s3: TestS3;
let storage: Storage;
let tmpRoot: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "vp-audio-mixer-"));
  s3 = await startTestS3();
  storage = s3.storage("lambda");
  tmpRoot = join(dir, "tmp");
  await mkdir(tmpRoot);
  const video = join(dir, "video.mp4");
  const voice = join(dir, "voice.wav");
  await Promise.all([
    makeTestClip({ path: video, durationSeconds: 4, width: 320, height: 240, fps: 30 }),
    makeSpeechClip({ path: voice, text: "A voice over, three seconds long.", durationSeconds: 3, workDir: dir }),
  ]);
  await storage.putFile("in/video.mp4", video);
  await storage.putFile("in/voice.wav", voice);
});
afterAll(async () => {
  await s3?.close();
  await rm(dir, { recursive: true, force: true });
});

describe("audio-mixer handler (S3 on s3rver)", () => {
  it("replaces the audio, uploads the MP4 and answers with the function payload", async () => {
    const handler = createHandler({ storage, tmpRoot, memoryMb: 2048 });
    const result = await handler({ video_key: "in/video.mp4", audio_key: "in/voice.wav", output_key: "out/mixed.mp4", config: { lengthMismatch: "pad" } });
    expect(result).toMatchObject({ s3_key: "out/mixed.mp4", width: 320, height: 240, video_codec: "h264", audio_codec: "aac" });
    expect(Math.abs(result.duration - 4)).toBeLessThanOrEqual(0.05);
    expect(result.size).toBe((await storage.stat("out/mixed.mp4"))!.size);
    // GB-seconds of 2048 MB for the time it took, plus the request: a few hundred-thousandths of a dollar.
    expect(result.cost).toBeGreaterThan(0);
    expect(result.cost).toBeLessThan(0.001);
    const local = join(dir, "check.mp4");
    await storage.download("out/mixed.mp4", local);
    expect((await streamSummary(local)).map((s) => s.type)).toEqual(["video", "audio"]);
    expect((await audioLevel(local, 3.1, 0.85)).maxDb).toBeLessThan(-80);
    expect(await readdir(tmpRoot)).toEqual([]);
  });

  it("rejects events that break the contract before touching storage", async () => {
    const handler = createHandler({ storage, tmpRoot });
    for (const event of [
      null,
      { video_key: "in/video.mp4", output_key: "out/x.mp4" },
      { video_key: "../../etc/passwd", audio_key: "in/voice.wav", output_key: "out/x.mp4" },
      { video_key: "in/video.mp4", audio_key: "s3://bucket/voice.wav", output_key: "out/x.mp4" },
      { video_key: "in/video.mp4", audio_key: "in/voice.wav", output_key: "out/x.mp4", config: { mode: "louder" } },
      { video_key: "in/video.mp4", audio_key: "in/voice.wav", output_key: "out/x.mp4", extra: true },
    ]) {
      await expect(handler(event)).rejects.toBeInstanceOf(AudioMixerEventError);
    }
    // Input errors reach the executor as errorType LambdaInputError (final), with the reason and its cause.
    const missing = await handler({ video_key: "in/missing.mp4", audio_key: "in/voice.wav", output_key: "out/x.mp4" }).catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(LambdaInputError);
    expect((missing as Error).message).toBe("no stored object at in/missing.mp4");
    expect((missing as Error).cause).toBeInstanceOf(NotFoundError);
    const notVideo = await handler({ video_key: "in/voice.wav", audio_key: "in/voice.wav", output_key: "out/x.mp4" }).catch((e: unknown) => e);
    expect(notVideo).toBeInstanceOf(LambdaInputError);
    expect((notVideo as Error).message).toBe("the video input has no video stream");
    expect(await storage.stat("out/x.mp4")).toBeNull();
    expect(await readdir(tmpRoot)).toEqual([]);
  });
});
