import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  audioLevel,
  buildMixAudioArgs,
  isInvalidMediaError,
  makeSpeechClip,
  makeTestClip,
  MediaError,
  mixAudio,
  planMix,
  probe,
  streamHash,
  streamSummary,
} from "./index";

let dir: string;
/** 4.0 s 320x240 with a 440 Hz tone; 2.0 s with a tone; 3.0 s espeak-ng voice; 2.0 s silent video. */
let video4: string, video2: string, voice3: string, silentVideo: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "vp-media-mix-"));
  [video4, video2, voice3, silentVideo] = ["video4.mp4", "video2.mp4", "voice3.wav", "silent.mp4"].map((n) => join(dir, n)) as [string, string, string, string];
  await Promise.all([
    makeTestClip({ path: video4, durationSeconds: 4, width: 320, height: 240, fps: 30 }),
    makeTestClip({ path: video2, durationSeconds: 2, width: 320, height: 240, fps: 30 }),
    makeSpeechClip({ path: voice3, text: "The quick brown fox jumps over the lazy dog, again and again.", durationSeconds: 3, workDir: dir }),
    makeTestClip({ path: silentVideo, durationSeconds: 2, width: 320, height: 240, fps: 30, audio: false }),
  ]);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let runs = 0;
async function freshWorkDir(): Promise<string> {
  const workDir = join(dir, `work-${++runs}`);
  await mkdir(workDir);
  return workDir;
}

describe("mixAudio", () => {
  it("pad: a 4.0 s video with a tone + a 3.0 s voice -> 4.0 s, the voice the only audio, silence in the last second", async () => {
    expect(Math.abs((await probe(voice3)).durationSeconds - 3)).toBeLessThanOrEqual(0.01);
    const workDir = await freshWorkDir();
    const output = join(workDir, "output.mp4");
    const progress: number[] = [];
    const result = await mixAudio({ video: video4, audio: voice3, output, workDir, lengthMismatch: "pad", onProgress: (p) => progress.push(p) });

    expect(Math.abs(result.probe.durationSeconds - 4)).toBeLessThanOrEqual(0.05);
    const streams = await streamSummary(output);
    expect(streams.map((s) => s.type)).toEqual(["video", "audio"]);
    expect(streams[1]).toMatchObject({ codec: "aac", sampleRate: 48000, channels: 2 });
    // The video was copied, not re-encoded: its packets are the input's.
    expect(result.videoCopied).toBe(true);
    expect(await streamHash(output, "v:0")).toBe(await streamHash(video4, "v:0"));
    // The voice speaks in the first 3 s; the tone (which ran the whole 4 s) is gone: the last second is silent.
    expect((await audioLevel(output, 0, 3)).meanDb).toBeGreaterThan(-45);
    expect((await audioLevel(output, 3.1, 0.85)).maxDb).toBeLessThan(-80);
    expect((await audioLevel(video4, 3.1, 0.85)).meanDb).toBeGreaterThan(-30);
    expect(progress.at(-1)).toBe(100);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));
    expect((await readdir(workDir)).sort()).toEqual(["output.mp4"]);
  });

  it("trim: the output lasts as long as the shorter input", async () => {
    const workDir = await freshWorkDir();
    const result = await mixAudio({ video: video4, audio: voice3, output: join(workDir, "output.mp4"), workDir, lengthMismatch: "trim" });
    expect(result.targetSeconds).toBeCloseTo(3, 2);
    expect(Math.abs(result.probe.durationSeconds - 3)).toBeLessThanOrEqual(0.1);
  });

  it("pad with a longer audio cuts it at the video's end", async () => {
    const workDir = await freshWorkDir();
    const result = await mixAudio({ video: video2, audio: voice3, output: join(workDir, "output.mp4"), workDir });
    expect(Math.abs(result.probe.durationSeconds - 2)).toBeLessThanOrEqual(0.05);
  });

  it("duck: the original audio stays underneath at the given gain", async () => {
    const workDir = await freshWorkDir();
    const output = join(workDir, "output.mp4");
    await mixAudio({ video: video4, audio: voice3, output, workDir, mode: "duck", originalGain: 0.2 });
    const original = await audioLevel(video4, 3.1, 0.85);
    const ducked = await audioLevel(output, 3.1, 0.85);
    // 20 * log10(0.2) = -14 dB, within encoder noise.
    expect(ducked.meanDb - original.meanDb).toBeGreaterThan(-15.5);
    expect(ducked.meanDb - original.meanDb).toBeLessThan(-12.5);
    expect((await streamSummary(output)).filter((s) => s.type === "audio")).toHaveLength(1);
  });

  it("adds a soundtrack to a silent video (duck has nothing to duck)", async () => {
    const workDir = await freshWorkDir();
    const output = join(workDir, "output.mp4");
    const result = await mixAudio({ video: silentVideo, audio: voice3, output, workDir, mode: "duck" });
    expect(result.probe.audio?.codec).toBe("aac");
    expect(Math.abs(result.probe.durationSeconds - 2)).toBeLessThanOrEqual(0.05);
  });

  it("startSeconds: the new audio is heard from its start offset, silence before it (replace)", async () => {
    const workDir = await freshWorkDir();
    const output = join(workDir, "output.mp4");
    // video4's own tone is replaced by video2's 2.0 s tone, placed at 1.5 s: heard from 1.5 s to 3.5 s of 4.0 s.
    const result = await mixAudio({ video: video4, audio: video2, output, workDir, startSeconds: 1.5 });
    expect(Math.abs(result.probe.durationSeconds - 4)).toBeLessThanOrEqual(0.05);
    expect((await audioLevel(output, 0, 1.4)).maxDb).toBeLessThan(-80);
    expect((await audioLevel(output, 1.6, 1.8)).meanDb).toBeGreaterThan(-30);
    expect((await audioLevel(output, 3.6, 0.35)).maxDb).toBeLessThan(-80);
  });

  it("startSeconds with trim: the output ends where the delayed audio ends", async () => {
    const workDir = await freshWorkDir();
    const result = await mixAudio({ video: video4, audio: video2, output: join(workDir, "output.mp4"), workDir, startSeconds: 1.5, lengthMismatch: "trim" });
    expect(result.targetSeconds).toBeCloseTo(3.5, 2);
    expect(Math.abs(result.probe.durationSeconds - 3.5)).toBeLessThanOrEqual(0.1);
  });

  it("fades the new audio in from its start and out to where it is last heard", async () => {
    const workDir = await freshWorkDir();
    const output = join(workDir, "output.mp4");
    await mixAudio({ video: video4, audio: video2, output, workDir, startSeconds: 1, fadeInSeconds: 0.8, fadeOutSeconds: 0.8 });
    // Heard from 1.0 s to 3.0 s: rising over 1.0-1.8, full over 1.8-2.2, falling over 2.2-3.0.
    const rising = await audioLevel(output, 1.05, 0.15);
    const full = await audioLevel(output, 1.85, 0.3);
    const falling = await audioLevel(output, 2.8, 0.15);
    expect(full.meanDb).toBeGreaterThan(-30);
    expect(rising.meanDb).toBeLessThan(full.meanDb - 10);
    expect(falling.meanDb).toBeLessThan(full.meanDb - 10);
    expect((await audioLevel(output, 0, 0.9)).maxDb).toBeLessThan(-80);
  });

  it("refuses a start offset at or past the video's end, before running ffmpeg", async () => {
    const workDir = await freshWorkDir();
    const output = join(workDir, "output.mp4");
    await expect(mixAudio({ video: video2, audio: voice3, output, workDir, startSeconds: 2 })).rejects.toThrow(
      new MediaError("the audio would start at 2 s, but the video lasts 2.00 s: choose a start offset inside the video"),
    );
    expect(await readdir(workDir)).toEqual([]);
  });

  it("refuses inputs without the needed stream, before running ffmpeg", async () => {
    const workDir = await freshWorkDir();
    const output = join(workDir, "output.mp4");
    await expect(mixAudio({ video: voice3, audio: voice3, output, workDir })).rejects.toThrow(new MediaError("the video input has no video stream"));
    await expect(mixAudio({ video: video4, audio: silentVideo, output, workDir })).rejects.toThrow(new MediaError("the audio input has no audio stream"));
    expect(await readdir(workDir)).toEqual([]);
  });

  it("builds arguments with file: inputs behind the protocol and format whitelists, video copied", async () => {
    const [pv, pa] = await Promise.all([probe(video4), probe(voice3)]);
    const plan = planMix(pv, pa, {});
    const args = buildMixAudioArgs(video4, voice3, plan, join(dir, "out.mp4"));
    args.forEach((arg, i) => {
      if (arg !== "-i") return;
      expect(args[i + 1]).toMatch(/^file:\//);
      expect(args.slice(i - 4, i)).toEqual(["-protocol_whitelist", "file", "-format_whitelist", expect.stringMatching(/^mov,mp4,/)]);
    });
    expect(args.filter((a) => a === "-i")).toHaveLength(2);
    expect(args.join(" ")).toContain("-c:v copy");
    expect(args.filter((a) => a.startsWith("/") || a.includes("://"))).toEqual([]);
    expect(isInvalidMediaError(new MediaError("x"))).toBe(true);
  });
});
