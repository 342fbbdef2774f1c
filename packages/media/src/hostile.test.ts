/**
 * Hostile inputs at the media core: each fails with a reason and nothing outside the run's
 * directory is read or written. "Not read" is checked through atime: on a relatime mount a read of a file
 * whose atime is older than its mtime updates the atime, which a control read proves first.
 */
import { copyFile, mkdir, mkdtemp, readdir, readFile, rm, stat, truncate, utimes, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  composeVideo,
  FfmpegError,
  inputArgs,
  isInvalidMediaError,
  makeSpeechClip,
  makeTestClip,
  MediaError,
  mergeVideos,
  mixAudio,
  probe,
  runFfmpeg,
} from "./index";

let dir: string;
/** Files a playlist may point at: they live outside every work directory. */
let outside: string;
let secret: string;
let good: string;
let voice: string;

const OLD = new Date("2001-01-01T00:00:00Z");

async function arm(path: string): Promise<void> {
  await utimes(path, OLD, new Date());
}
async function wasRead(path: string): Promise<boolean> {
  return (await stat(path)).atimeMs > OLD.getTime() + 1000;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "vp-media-hostile-"));
  outside = join(dir, "outside");
  await mkdir(outside);
  secret = join(outside, "secret.mp4");
  good = join(dir, "good.mp4");
  voice = join(dir, "voice.wav");
  await Promise.all([
    makeTestClip({ path: secret, durationSeconds: 2, width: 320, height: 240, fps: 30 }),
    makeTestClip({ path: good, durationSeconds: 2, width: 320, height: 240, fps: 30 }),
    makeSpeechClip({ path: voice, text: "hello", durationSeconds: 1, workDir: dir }),
  ]);
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

let runs = 0;
async function jobDir(): Promise<string> {
  const workDir = join(dir, `job-${++runs}`);
  await mkdir(workDir);
  return workDir;
}

describe("a 'video' that is really an HLS playlist naming a file outside the job directory", () => {
  let playlist: string;
  let workDir: string;
  beforeAll(async () => {
    workDir = await jobDir();
    playlist = join(workDir, "seg-000.mp4");
    await writeFile(playlist, `#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n${secret}\n#EXTINF:2.0,\nfile:${secret}\n#EXT-X-ENDLIST\n`);
  });

  it("the atime check can see a read (control)", async () => {
    const control = join(outside, "control.mp4");
    await copyFile(secret, control);
    await arm(control);
    expect(await wasRead(control)).toBe(false);
    await probe(control);
    expect(await wasRead(control)).toBe(true);
  });

  it("is refused by probe, by every media operation and by a bare run, without reading the target", async () => {
    await arm(secret);
    await expect(probe(playlist)).rejects.toThrow(new MediaError("not a readable media file: its format (hls) is not an accepted media container"));
    const output = join(workDir, "output.mp4");
    for (const run of [
      () => mergeVideos({ inputs: [playlist, good], output, workDir, mode: "auto" }),
      () => mixAudio({ video: playlist, audio: voice, output, workDir }),
      () => composeVideo({ background: good, overlays: [playlist], output, workDir }),
    ]) {
      const error = await run().catch((e: unknown) => e);
      expect(isInvalidMediaError(error), String(error)).toBe(true);
      expect((error as Error).message).toMatch(/not an accepted media container/);
    }
    // Even an ffmpeg run that skipped probing stops at the format whitelist.
    const bare = (await runFfmpeg([...inputArgs(playlist), "-c", "copy", "-f", "mp4", `file:${output}`], { workDir }).catch((e: unknown) => e)) as FfmpegError;
    expect(bare).toBeInstanceOf(FfmpegError);
    expect(bare.invalidInput).toBe(true);
    expect(bare.message).toMatch(/Format not allowed: not a single media file/);
    expect(await wasRead(secret)).toBe(false);
    expect((await readdir(outside)).sort()).toEqual(["control.mp4", "secret.mp4"]);
    expect((await readdir(workDir)).sort()).toEqual(["seg-000.mp4"]);
  });

  it("is refused inside a concat list too (the whitelist reaches the concat demuxer's children)", async () => {
    await arm(secret);
    const mergeDir = await jobDir();
    const a = join(mergeDir, "seg-000.mp4");
    const b = join(mergeDir, "seg-001.mp4");
    await copyFile(good, a);
    await copyFile(playlist, b);
    // Probes are handed in as if they had lied, so the copy path's concat list does reach the playlist.
    const p = await probe(good);
    const error = await mergeVideos({ inputs: [a, b], probes: [p, p], output: join(mergeDir, "output.mp4"), workDir: mergeDir }).catch((e: unknown) => e);
    expect(isInvalidMediaError(error), String(error)).toBe(true);
    expect((error as Error).message).toMatch(/Format not allowed: not a single media file/);
    expect(await wasRead(secret)).toBe(false);
    expect((await readdir(mergeDir)).sort()).toEqual(["seg-000.mp4", "seg-001.mp4"]);
  });
});

describe("other hostile inputs", () => {
  it("a 0-byte file", async () => {
    const workDir = await jobDir();
    const empty = join(workDir, "seg-000.mp4");
    await writeFile(empty, "");
    const error = await mergeVideos({ inputs: [empty, good], output: join(workDir, "output.mp4"), workDir }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MediaError);
    expect((error as Error).message).toMatch(/^not a readable media file: .*(Invalid data|End of file)/);
    expect(await readdir(workDir)).toEqual(["seg-000.mp4"]);
  });

  it("a truncated MP4 whose header survived: the run stops at the damage instead of returning a short file", async () => {
    const workDir = await jobDir();
    const cut = join(workDir, "seg-000.mp4");
    await copyFile(good, cut);
    await truncate(cut, Math.floor((await stat(good)).size / 2));
    // The header (moov, at the front) is intact, so probing alone cannot tell.
    expect((await probe(cut)).durationSeconds).toBeCloseTo(2, 1);
    for (const run of [
      () => mergeVideos({ inputs: [cut, good], output: join(workDir, "output.mp4"), workDir }),
      () => mixAudio({ video: cut, audio: voice, output: join(workDir, "output.mp4"), workDir }),
      () => composeVideo({ background: good, overlays: [cut], output: join(workDir, "output.mp4"), workDir }),
    ]) {
      const error = await run().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(FfmpegError);
      expect((error as FfmpegError).invalidInput).toBe(true);
      expect((error as Error).message).toMatch(/partial file|Invalid NAL unit size|corrupt input packet/);
      expect((error as Error).message).not.toContain(dir);
    }
    expect(await readdir(workDir)).toEqual(["seg-000.mp4"]);
  });

  it("a decoder's complaint about one bad frame is not damage: real files have those and still play", async () => {
    const workDir = await jobDir();
    const mp3 = join(workDir, "audio.mp3");
    await runFfmpeg(["-f", "lavfi", "-i", "sine=duration=3", "-c:a", "libmp3lame", "-f", "mp3", `file:${mp3}`]);
    const bytes = await readFile(mp3);
    const middle = Math.floor(bytes.length / 2);
    // 0x00..0xff eight times in the middle: ffmpeg says "[mp3float] Header missing" and
    // "Error while decoding stream #0:0: Invalid data found when processing input", and exits 0.
    const junk = Buffer.from(Array.from({ length: 2048 }, (_, i) => i % 256));
    await writeFile(mp3, Buffer.concat([bytes.subarray(0, middle), junk, bytes.subarray(middle)]));
    await runFfmpeg([...inputArgs(mp3), "-f", "null", "-"], { workDir });
    const result = await mixAudio({ video: good, audio: mp3, output: join(workDir, "output.mp4"), workDir });
    expect(result.probe.audio?.codec).toBe("aac");
  });

  it("an audio file given as a video", async () => {
    const workDir = await jobDir();
    const output = join(workDir, "output.mp4");
    await expect(mergeVideos({ inputs: [voice, good], output, workDir })).rejects.toThrow(/input 1 \(voice\.wav\) has no video stream/);
    await expect(mixAudio({ video: voice, audio: voice, output, workDir })).rejects.toThrow(new MediaError("the video input has no video stream"));
    await expect(composeVideo({ background: voice, overlays: [good], output, workDir })).rejects.toThrow(new MediaError("the background has no video stream"));
    expect(await readdir(workDir)).toEqual([]);
  });

  it("names with quotes and newlines never reach a concat list or an argument", async () => {
    const workDir = await jobDir();
    const quoted = join(outside, 'it\'s "quoted".mp4');
    await copyFile(good, quoted);
    // A quote in a path is harmless: the list names a generated link, never the path.
    const result = await mergeVideos({ inputs: [quoted, good], output: join(workDir, "output.mp4"), workDir });
    expect(result.strategy).toBe("copy");
    expect(await readFile(join(workDir, "concat.txt"), "utf8")).toBe("ffconcat version 1.0\nfile 'concat-000.mp4'\nfile 'concat-001.mp4'\n");
    // A newline (which would end a concat line and start "file '/etc/passwd'") is refused outright.
    const newline = join(outside, "a.mp4\nfile 'secret.mp4'");
    await copyFile(good, newline);
    const error = await mergeVideos({ inputs: [newline, good], output: join(workDir, "output2.mp4"), workDir }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MediaError);
    expect((error as Error).message).toBe("media path contains control characters");
    expect(await readdir(outside)).toEqual(expect.arrayContaining(["secret.mp4"]));
  });
});
