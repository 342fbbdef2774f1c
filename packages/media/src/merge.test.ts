import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  buildCopyArgs,
  buildReencodeArgs,
  compatible,
  concatLine,
  concatList,
  makeTestClip,
  MediaError,
  mergeVideos,
  probe,
  runFfmpeg,
  type ProbeResult,
} from "./index";

let dir: string;
/** 320x240@30 with audio: 2.0 s, 1.5 s, 3.0 s. */
let a: string, b: string, c: string;
/** 2.0 s at 640x360 (another size and aspect), 1.5 s at 25 fps, 1.0 s without audio. */
let wide: string, fps25: string, silent: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "vp-media-merge-"));
  const clips = join(dir, "clips");
  await mkdir(clips);
  [a, b, c, wide, fps25, silent] = ["a", "b", "c", "wide", "fps25", "silent"].map((n) => join(clips, `${n}.mp4`)) as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  await Promise.all([
    makeTestClip({ path: a, durationSeconds: 2, width: 320, height: 240, fps: 30 }),
    makeTestClip({ path: b, durationSeconds: 1.5, width: 320, height: 240, fps: 30, color: "#336699" }),
    makeTestClip({ path: c, durationSeconds: 3, width: 320, height: 240, fps: 30 }),
    makeTestClip({ path: wide, durationSeconds: 2, width: 640, height: 360, fps: 30 }),
    makeTestClip({ path: fps25, durationSeconds: 1.5, width: 320, height: 240, fps: 25 }),
    makeTestClip({ path: silent, durationSeconds: 1, width: 320, height: 240, fps: 30, audio: false, color: "red" }),
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

describe("probe", () => {
  it("describes a clip", async () => {
    const p = await probe(a);
    expect(p.durationSeconds).toBeCloseTo(2, 1);
    expect(p.sizeBytes).toBeGreaterThan(0);
    expect(p.formatName).toContain("mp4");
    expect(p.video).toMatchObject({ codec: "h264", width: 320, height: 240, fps: 30, pixFmt: "yuv420p" });
    expect(p.audio).toMatchObject({ codec: "aac", sampleRate: 48000, channels: 2, channelLayout: "stereo" });
    expect((await probe(silent)).audio).toBeUndefined();
  });

  it("rejects a file that is not media with ffprobe's reason", async () => {
    const notMedia = join(dir, "notes.mp4");
    await writeFile(notMedia, "just some text\n");
    const error = await probe(notMedia).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MediaError);
    expect((error as Error).message).toBe("not a readable media file: [mov,mp4,m4a,3gp,3g2,mj2] moov atom not found; Invalid data found when processing input");
    await expect(probe(join(dir, "missing.mp4"))).rejects.toBeInstanceOf(MediaError);
  });
});

describe("argument builders", () => {
  it("quote concat entries and refuse anything but generated names", () => {
    expect(concatLine("seg-000.mp4")).toBe("file 'seg-000.mp4'");
    expect(concatList(["seg-000.mp4", "seg-001.mp4"])).toBe("ffconcat version 1.0\nfile 'seg-000.mp4'\nfile 'seg-001.mp4'\n");
    for (const bad of ["/etc/passwd", "../x.mp4", "http://evil/x.mp4", "a'b.mp4", "x.mp4\nfile '/etc/passwd'", ".hidden", "a b.mp4"]) {
      expect(() => concatLine(bad)).toThrow(MediaError);
    }
  });

  it("put only file: paths behind a file-only protocol whitelist", async () => {
    const probes = await Promise.all([probe(a), probe(silent)]);
    const reencode = buildReencodeArgs([a, silent], probes, { width: 320, height: 240, fps: 30 }, join(dir, "out.mp4"));
    const copy = buildCopyArgs(join(dir, "concat.txt"), join(dir, "out.mp4"), true);
    for (const args of [reencode, copy]) {
      args.forEach((arg, i) => {
        if (arg !== "-i") return;
        expect(args[i + 1]?.startsWith("file:/")).toBe(true);
        const before = args.slice(Math.max(0, i - 6), i);
        expect(before[before.indexOf("-protocol_whitelist") + 1]).toBe("file");
      });
      expect(args.filter((x) => x.startsWith("/") || x.includes("://"))).toEqual([]);
      expect(args.at(-1)).toBe(`file:${join(dir, "out.mp4")}`);
    }
    // The silent segment gets generated silence of its own duration.
    expect(reencode.join(" ")).toMatch(/anullsrc=r=48000:cl=stereo,atrim=duration=1\.0\d+/);
  });

  it("the concat demuxer (safe mode) refuses a list entry that is a path", async () => {
    const workDir = await freshWorkDir();
    const list = join(workDir, "concat.txt");
    await writeFile(list, `ffconcat version 1.0\nfile '${a}'\n`);
    await expect(runFfmpeg(buildCopyArgs(list, join(workDir, "output.mp4"), true))).rejects.toThrow(/Unsafe file name/);
  });

  it("compatible() compares codec, size, rate, pixel format and audio", async () => {
    const [pa, pb, pw, p25, ps] = await Promise.all([probe(a), probe(b), probe(wide), probe(fps25), probe(silent)]);
    expect(compatible([pa, pb])).toBe(true);
    expect(compatible([pa, pw])).toBe(false);
    expect(compatible([pa, p25])).toBe(false);
    expect(compatible([pa, ps])).toBe(false);
    const otherRate: ProbeResult = { ...pb, audio: { ...pb.audio!, sampleRate: 44100 } };
    expect(compatible([pa, otherRate])).toBe(false);
  });
});

describe("mergeVideos", () => {
  it("stream-copies compatible segments", async () => {
    const workDir = await freshWorkDir();
    const output = join(workDir, "output.mp4");
    const progress: number[] = [];
    const result = await mergeVideos({ inputs: [a, b, c], output, workDir, mode: "auto", onProgress: (p) => progress.push(p) });
    expect(result.strategy).toBe("copy");
    expect(Math.abs(result.probe.durationSeconds - 6.5)).toBeLessThanOrEqual(0.1);
    expect(result.probe.video).toMatchObject({ codec: "h264", width: 320, height: 240 });
    expect(result.probe.audio?.codec).toBe("aac");
    expect(progress.at(-1)).toBe(100);
    // The list names generated links next to it, never a path.
    const list = await readFile(join(workDir, "concat.txt"), "utf8");
    expect(list).toBe("ffconcat version 1.0\nfile 'concat-000.mp4'\nfile 'concat-001.mp4'\nfile 'concat-002.mp4'\n");
    expect((await readdir(workDir)).sort()).toEqual(["concat-000.mp4", "concat-001.mp4", "concat-002.mp4", "concat.txt", "output.mp4"]);
  });

  it("re-encodes mixed sizes to the first segment's size; durations add up", async () => {
    const workDir = await freshWorkDir();
    const progress: number[] = [];
    const result = await mergeVideos({
      inputs: [a, b, wide],
      output: join(workDir, "output.mp4"),
      workDir,
      mode: "auto",
      onProgress: (p) => progress.push(p),
    });
    expect(result.strategy).toBe("reencode");
    // 2.0 + 1.5 + 2.0
    expect(Math.abs(result.probe.durationSeconds - 5.5)).toBeLessThanOrEqual(0.1);
    expect(result.probe.video).toMatchObject({ codec: "h264", width: 320, height: 240, fps: 30, pixFmt: "yuv420p" });
    expect(result.probe.audio).toMatchObject({ codec: "aac", sampleRate: 48000, channels: 2 });
    expect(progress.length).toBeGreaterThan(0);
    expect(progress.at(-1)).toBe(100);
  });

  it("2.0 s + 1.5 s + 3.0 s with one of another resolution and a silent one = 6.5 s", async () => {
    const workDir = await freshWorkDir();
    const threeSeconds = join(workDir, "seg-002.mp4");
    await makeTestClip({ path: threeSeconds, durationSeconds: 3, width: 640, height: 360, fps: 30, audio: false });
    const result = await mergeVideos({ inputs: [a, b, threeSeconds], output: join(workDir, "output.mp4"), workDir, mode: "auto" });
    expect(result.strategy).toBe("reencode");
    expect(Math.abs(result.probe.durationSeconds - 6.5)).toBeLessThanOrEqual(0.1);
    expect(result.probe.audio).toBeDefined();
  });

  it("re-encodes 25 fps + 30 fps to the configured size and rate", async () => {
    const workDir = await freshWorkDir();
    const result = await mergeVideos({
      inputs: [fps25, a],
      output: join(workDir, "output.mp4"),
      workDir,
      mode: "auto",
      width: 240,
      height: 180,
      fps: 30,
    });
    expect(result.strategy).toBe("reencode");
    expect(Math.abs(result.probe.durationSeconds - 3.5)).toBeLessThanOrEqual(0.1);
    expect(result.probe.video).toMatchObject({ width: 240, height: 180, fps: 30 });
  });

  it("re-encodes compatible segments when mode is always, at the first segment's rate by default", async () => {
    const workDir = await freshWorkDir();
    const result = await mergeVideos({ inputs: [fps25, fps25], output: join(workDir, "output.mp4"), workDir, mode: "always" });
    expect(result.strategy).toBe("reencode");
    expect(Math.abs(result.probe.durationSeconds - 3)).toBeLessThanOrEqual(0.1);
    expect(result.probe.video?.fps).toBe(25);
  });

  it("rejects an input that is not media and leaves no output", async () => {
    const workDir = await freshWorkDir();
    const junk = join(workDir, "seg-001.mp4");
    await writeFile(junk, Buffer.alloc(2048, 1));
    await expect(mergeVideos({ inputs: [a, junk], output: join(workDir, "output.mp4"), workDir })).rejects.toThrow(/not a readable media file/);
    expect(await readdir(workDir)).toEqual(["seg-001.mp4"]);
  });
});
