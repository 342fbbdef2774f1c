/**
 * Stored probe facts instead of ffprobe: the inputs' facts come from their producers' outputs, the copy
 * paths describe their output from the streams they copied and the file's header. Each claim is checked
 * against a real ffprobe of the same file, and every ffprobe start is counted through a PATH wrapper.
 */
import { copyFile, mkdir, mkdtemp, open, readdir, rm, stat, truncate, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  buildCopyArgs,
  composeVideo,
  concatList,
  describeCopiedOutput,
  factsOfProbe,
  FfmpegError,
  isInvalidMediaError,
  makeSpeechClip,
  makeTestClip,
  MediaError,
  mergeVideos,
  mixAudio,
  moovReservation,
  moovReservationTooSmall,
  probe,
  probeInput,
  probeOfFacts,
  readMp4Header,
  runFfmpeg,
  watchFfprobe,
  type FfprobeWatch,
  type MediaFacts,
  type ProbeResult,
} from "./index";

let dir: string;
let watch: FfprobeWatch;
/** 320x240@30 with audio, 2.0 s and 1.5 s; a 2.0 s voice. */
let a: string, b: string, voice: string;
let factsA: MediaFacts, factsB: MediaFacts, factsVoice: MediaFacts;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "vp-media-facts-"));
  a = join(dir, "a.mp4");
  b = join(dir, "b.mp4");
  voice = join(dir, "voice.wav");
  await Promise.all([
    makeTestClip({ path: a, durationSeconds: 2, width: 320, height: 240, fps: 30 }),
    makeTestClip({ path: b, durationSeconds: 1.5, width: 320, height: 240, fps: 30, color: "#336699" }),
    makeSpeechClip({ path: voice, text: "stored facts", durationSeconds: 2, workDir: dir }),
  ]);
  // What the asset node stores for each file when it is uploaded.
  [factsA, factsB, factsVoice] = (await Promise.all([a, b, voice].map(async (p) => factsOfProbe(await probe(p))))) as [MediaFacts, MediaFacts, MediaFacts];
  await mkdir(join(dir, "bin"));
  watch = await watchFfprobe(join(dir, "bin"));
});
afterAll(async () => {
  watch?.stop();
  await rm(dir, { recursive: true, force: true });
});

let runs = 0;
async function jobDir(): Promise<string> {
  const workDir = join(dir, `job-${++runs}`);
  await mkdir(workDir);
  return workDir;
}

/** Types of the first top-level boxes of a file. */
async function leadingBoxes(path: string, count = 3): Promise<string[]> {
  const file = await open(path, "r");
  try {
    const types: string[] = [];
    let offset = 0;
    for (let i = 0; i < count; i++) {
      const header = Buffer.alloc(8);
      if ((await file.read(header, 0, 8, offset)).bytesRead < 8) break;
      types.push(header.toString("latin1", 4, 8));
      offset += header.readUInt32BE(0);
    }
    return types;
  } finally {
    await file.close();
  }
}

/** The fields a probe of an output and its description from facts must agree on. */
function comparable(p: ProbeResult) {
  return {
    duration: Math.round(p.durationSeconds * 1000) / 1000,
    size: p.sizeBytes,
    formatName: p.formatName,
    video: p.video,
    audio: p.audio,
  };
}

describe("facts of a probe", () => {
  it("round-trip into the probe they were taken from", async () => {
    const p = await probe(a);
    expect(factsA).toMatchObject({
      duration: 2,
      size: p.sizeBytes,
      formatName: "mov,mp4,m4a,3gp,3g2,mj2",
      width: 320,
      height: 240,
      videoCodec: "h264",
      videoProfile: p.video!.profile,
      pixFmt: "yuv420p",
      fps: 30,
      videoTimeBase: p.video!.timeBase,
      audioCodec: "aac",
      sampleRate: 48000,
      audioChannels: 2,
      audioChannelLayout: "stereo",
    });
    expect(probeOfFacts(factsA)).toEqual({ ...p, durationSeconds: factsA.duration });
    expect(probeOfFacts(factsVoice)).toMatchObject({ audio: { codec: "pcm_s16le", sampleRate: 48000, channels: 1 } });
    expect(probeOfFacts(factsVoice)!.video).toBeUndefined();
  });

  it("are not used when incomplete: an output stored before these facts existed, a stream named without its details", () => {
    const old = { duration: 2, size: 1000, width: 320, height: 240, videoCodec: "h264", audioCodec: "aac" };
    expect(probeOfFacts(old)).toBeUndefined();
    expect(probeOfFacts({ ...factsA, pixFmt: undefined })).toBeUndefined();
    expect(probeOfFacts({ ...factsA, sampleRate: undefined })).toBeUndefined();
    expect(probeOfFacts({ ...factsA, size: 0 })).toBeUndefined();
    expect(probeOfFacts({ ...factsA, videoCodec: undefined, audioCodec: undefined })).toBeUndefined();
    expect(probeOfFacts(undefined)).toBeUndefined();
  });
});

describe("probeInput", () => {
  it("starts no ffprobe when the facts are complete and the file has their size", async () => {
    await watch.reset();
    expect(await probeInput(a, factsA)).toEqual(probeOfFacts(factsA));
    expect(await watch.count()).toBe(0);
  });

  it("probes when the facts are missing, incomplete, or describe a file of another size", async () => {
    await watch.reset();
    const real = await probe(b);
    await watch.reset();
    expect(await probeInput(b, undefined)).toEqual(real);
    expect(await probeInput(b, { duration: 1.5, size: real.sizeBytes, videoCodec: "h264" })).toEqual(real);
    // a's facts on b's file: the size tells them apart, and the file is probed for what it really is.
    expect(await probeInput(b, factsA)).toEqual(real);
    expect(await watch.count()).toBe(3);
  });
});

describe("the copy paths describe their output without ffprobe", () => {
  it("merge-videos (stream copy): no ffprobe at all, and the description is what ffprobe says of the file", async () => {
    const workDir = await jobDir();
    const output = join(workDir, "output.mp4");
    await watch.reset();
    const result = await mergeVideos({ inputs: [a, b, a], facts: [factsA, factsB, factsA], output, workDir });
    expect(await watch.count()).toBe(0);
    expect(result.strategy).toBe("copy");
    expect(comparable(result.probe)).toEqual(comparable(await probe(output)));
    expect(result.probe.durationSeconds).toBeCloseTo(5.5, 1);
    // The moov is at the front (playable while it downloads), written into a reservation, not by a second pass.
    expect(await leadingBoxes(output)).toEqual(["ftyp", "moov", "free"]);
  });

  it("a moov reservation that proves too small fails the run as not the input's fault, and the copy is repeated with +faststart", async () => {
    const workDir = await jobDir();
    await Promise.all([copyFile(a, join(workDir, "seg-000.mp4")), copyFile(b, join(workDir, "seg-001.mp4"))]);
    await writeFile(join(workDir, "concat.txt"), concatList(["seg-000.mp4", "seg-001.mp4"]));
    const error = await runFfmpeg(buildCopyArgs(join(workDir, "concat.txt"), join(workDir, "small.mp4"), true, 1000), { workDir }).catch((e: unknown) => e);
    // ffmpeg 5.1 exits 0 here with a file that has no moov: runFfmpeg fails it.
    expect(error).toBeInstanceOf(FfmpegError);
    expect(moovReservationTooSmall(error)).toBe(true);
    expect((error as FfmpegError).invalidInput).toBe(false);
    // Sized from the inputs, the reservation holds.
    const reserved = await moovReservation([join(workDir, "seg-000.mp4"), join(workDir, "seg-001.mp4")]);
    expect(reserved).toBeGreaterThan(64 * 1024);
    await runFfmpeg(buildCopyArgs(join(workDir, "concat.txt"), join(workDir, "ok.mp4"), true, reserved), { workDir });
    expect(await leadingBoxes(join(workDir, "ok.mp4"))).toEqual(["ftyp", "moov", "free"]);
    expect(await moovReservation([voice])).toBeUndefined();
  });

  it("mix-audio (video copied, audio encoded): no ffprobe at all, and the description is what ffprobe says of the file", async () => {
    const workDir = await jobDir();
    const output = join(workDir, "output.mp4");
    await watch.reset();
    const result = await mixAudio({ video: a, audio: voice, facts: { video: factsA, audio: factsVoice }, output, workDir });
    expect(await watch.count()).toBe(0);
    expect(result.videoCopied).toBe(true);
    expect(comparable(result.probe)).toEqual(comparable(await probe(output)));
    expect(await leadingBoxes(output)).toEqual(["ftyp", "moov", "free"]);
  });

  it("compose-video (an encode) takes the inputs' facts and probes only its output", async () => {
    const workDir = await jobDir();
    const output = join(workDir, "output.mp4");
    await watch.reset();
    const result = await composeVideo({ background: a, overlays: [b], facts: { background: factsA, overlays: [factsB] }, output, workDir });
    expect(await watch.count()).toBe(1);
    expect(result.probe).toEqual(await probe(output));
  });

  it("reads duration and tracks from the header as ffprobe does", async () => {
    const header = await readMp4Header(a);
    const p = await probe(a);
    expect(header.durationSeconds).toBeCloseTo(p.durationSeconds, 3);
    expect(header.tracks.map((t) => t.handler).sort()).toEqual(["soun", "vide"]);
    expect(`1/${header.tracks.find((t) => t.handler === "vide")!.timescale}`).toBe(p.video!.timeBase);
    await expect(readMp4Header(voice)).rejects.toThrow(MediaError);
  });

  it("an output clearly shorter than its inputs promised fails and is removed", async () => {
    const workDir = await jobDir();
    const output = join(workDir, "output.mp4");
    await copyFile(a, output);
    const p = probeOfFacts(factsA)!;
    // 2.0 s were written where 4.0 s were promised.
    const error = await describeCopiedOutput(output, { video: p.video, audio: p.audio }, 4).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MediaError);
    expect(isInvalidMediaError(error)).toBe(true);
    expect((error as Error).message).toMatch(/^the output lasts 2\.00 s but its inputs promised 4\.00 s/);
    expect(await readdir(workDir)).toEqual([]);
    // Within the tolerance (priming samples, a last frame) it is the file's own duration.
    await copyFile(a, output);
    expect((await describeCopiedOutput(output, { video: p.video, audio: p.audio }, 2.2)).durationSeconds).toBeCloseTo(2, 2);
  });
});

describe("facts that lie do not get a hostile file past the checks", () => {
  it("an HLS playlist stored with a real clip's facts (and its own size) is refused by ffmpeg's whitelists, its target unread", async () => {
    const workDir = await jobDir();
    const outside = join(dir, "outside-secret.mp4");
    await copyFile(a, outside);
    const old = new Date("2001-01-01T00:00:00Z");
    await utimes(outside, old, new Date());
    const playlist = join(workDir, "seg-001.mp4");
    await writeFile(playlist, `#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n${outside}\n#EXT-X-ENDLIST\n`);
    const seg0 = join(workDir, "seg-000.mp4");
    await copyFile(a, seg0);
    const lying = { ...factsA, size: (await stat(playlist)).size };
    await watch.reset();
    const error = await mergeVideos({ inputs: [seg0, playlist], facts: [factsA, lying], output: join(workDir, "output.mp4"), workDir }).catch(
      (e: unknown) => e,
    );
    expect(await watch.count()).toBe(0);
    expect(isInvalidMediaError(error), String(error)).toBe(true);
    expect((error as Error).message).toMatch(/Format not allowed: not a single media file/);
    expect((await stat(outside)).atimeMs).toBeLessThan(old.getTime() + 1000);
    expect((await readdir(workDir)).sort()).toEqual(["seg-000.mp4", "seg-001.mp4"]);
  });

  it("a truncated MP4 stored with the whole file's facts (and its cut size) still fails the run", async () => {
    const workDir = await jobDir();
    const cut = join(workDir, "seg-000.mp4");
    await copyFile(a, cut);
    await truncate(cut, Math.floor(factsA.size! / 2));
    const lying = { ...factsA, size: (await stat(cut)).size };
    for (const run of [
      () => mergeVideos({ inputs: [cut, b], facts: [lying, factsB], output: join(workDir, "output.mp4"), workDir }),
      () => mixAudio({ video: cut, audio: voice, facts: { video: lying, audio: factsVoice }, output: join(workDir, "output.mp4"), workDir }),
    ]) {
      await watch.reset();
      const error = await run().catch((e: unknown) => e);
      expect(await watch.count()).toBe(0);
      expect(isInvalidMediaError(error), String(error)).toBe(true);
      expect(error).toBeInstanceOf(FfmpegError);
      expect((error as Error).message).toMatch(/partial file|Invalid NAL unit size|corrupt input packet/);
    }
    expect(await readdir(workDir)).toEqual(["seg-000.mp4"]);
  });
});
