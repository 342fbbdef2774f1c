import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  audioLevel,
  buildComposeArgs,
  composeVideo,
  decodeFrame,
  makeTestClip,
  MediaError,
  overlayLayout,
  probe,
  regionDifference,
  streamHash,
  streamSummary,
} from "./index";

let dir: string;
/** 1280x720 @25 moving test pattern with a 440 Hz tone, 2 s; 640x360 solid red with an 880 Hz tone, 3 s; a silent portrait overlay. */
let background: string, overlay: string, portrait: string;
const FULL = { width: 1280, height: 720 };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "vp-media-compose-"));
  [background, overlay, portrait] = ["bg.mp4", "ov.mp4", "portrait.mp4"].map((n) => join(dir, n)) as [string, string, string];
  await Promise.all([
    makeTestClip({ path: background, durationSeconds: 2, width: 1280, height: 720, fps: 25 }),
    makeTestClip({ path: overlay, durationSeconds: 3, width: 640, height: 360, fps: 30, color: "red", toneHz: 880 }),
    makeTestClip({ path: portrait, durationSeconds: 1, width: 360, height: 640, fps: 30, color: "blue", audio: false }),
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

describe("overlayLayout", () => {
  it("places a 25 % overlay in the corners with a margin and keeps boxes inside the frame", () => {
    const ov = { width: 640, height: 360 };
    expect(overlayLayout(FULL, ov, { position: "bottom-right" })).toMatchObject({ x: 942, y: 522, width: 320, height: 180 });
    expect(overlayLayout(FULL, ov, { position: "top-left", margin: 0 })).toMatchObject({ x: 0, y: 0 });
    expect(overlayLayout(FULL, ov, { position: "center", size: 0.5 })).toMatchObject({ x: 320, y: 180, width: 640, height: 360 });
    expect(overlayLayout(FULL, ov, { position: "custom", x: 5000, y: 10 })).toMatchObject({ x: 960, y: 10 });
    expect(overlayLayout(FULL, ov, { borderWidth: 4 })).toMatchObject({ width: 328, height: 188, innerWidth: 320, border: 4 });
    // Defaults by index: bottom-right, then top-right.
    expect(overlayLayout(FULL, ov, {}, 1)).toMatchObject({ x: 942, y: 18 });
    const tall = overlayLayout(FULL, { width: 360, height: 640 }, { size: 1 });
    expect(tall.height).toBeLessThanOrEqual(720);
    expect(tall.width / tall.height).toBeCloseTo(360 / 640, 1);
    expect(() => overlayLayout(FULL, ov, { borderColor: "red:x=1" })).toThrow(MediaError);
  });
});

describe("composeVideo", () => {
  it("a 640x360 overlay at bottom-right, 25 % width, over 1280x720 -> 1280x720, the background's duration, overlay visible", async () => {
    const workDir = await freshWorkDir();
    const output = join(workDir, "output.mp4");
    const progress: number[] = [];
    const result = await composeVideo({
      background,
      overlays: [overlay],
      specs: [{ position: "bottom-right", size: 0.25 }],
      audio: "background",
      output,
      workDir,
      onProgress: (p) => progress.push(p),
    });
    expect(result.probe.video).toMatchObject({ width: 1280, height: 720, fps: 25, codec: "h264", pixFmt: "yuv420p" });
    expect(Math.abs(result.probe.durationSeconds - 2)).toBeLessThanOrEqual(0.05);
    const [box] = result.layouts;
    expect(box).toMatchObject({ x: 942, y: 522, width: 320, height: 180 });

    const composed = await decodeFrame(output, 1, FULL);
    const plain = await decodeFrame(background, 1, FULL);
    // The overlay's region differs from the background-only frame; the rest of the frame does not.
    expect(regionDifference(composed, plain, box!)).toBeGreaterThan(40);
    expect(regionDifference(composed, plain, { x: 0, y: 0, width: 900, height: 500 })).toBeLessThan(6);
    const [r, g, b] = composed.pixel(box!.x + 160, box!.y + 90);
    expect(r).toBeGreaterThan(200);
    expect(g + b).toBeLessThan(80);
    // The background's audio is kept, copied as it was.
    expect(await streamHash(output, "a:0")).toBe(await streamHash(background, "a:0"));
    expect(progress.at(-1)).toBe(100);
    expect((await readdir(workDir)).sort()).toEqual(["output.mp4"]);
  });

  it("starts an overlay late, with a border and rounded corners", async () => {
    const workDir = await freshWorkDir();
    const output = join(workDir, "output.mp4");
    const { layouts } = await composeVideo({
      background,
      overlays: [overlay],
      specs: [{ position: "top-left", size: 0.3, startSeconds: 1, borderWidth: 6, borderColor: "#00ff00", cornerRadius: 40 }],
      output,
      workDir,
    });
    const box = layouts[0]!;
    const plain0 = await decodeFrame(background, 0.5, FULL);
    const before = await decodeFrame(output, 0.5, FULL);
    expect(regionDifference(before, plain0, box)).toBeLessThan(6);
    const after = await decodeFrame(output, 1.5, FULL);
    const plain = await decodeFrame(background, 1.5, FULL);
    expect(regionDifference(after, plain, box)).toBeGreaterThan(30);
    // Border: green at the middle of the top edge; rounded: the very corner shows the background.
    const [, gTop] = after.pixel(box.x + Math.round(box.width / 2), box.y + 2);
    expect(gTop).toBeGreaterThan(180);
    const corner = regionDifference(after, plain, { x: box.x, y: box.y, width: 6, height: 6 });
    expect(corner).toBeLessThan(12);
  });

  it("by default mixes an overlay's audio in, and copies the background's audio when the overlays are silent", async () => {
    const workDir = await freshWorkDir();
    const spoken = join(workDir, "spoken.mp4");
    const result = await composeVideo({ background, overlays: [overlay], specs: [{ startSeconds: 1 }], output: spoken, workDir });
    expect(result.probe.audio?.codec).toBe("aac");
    // The overlay's 880 Hz tone joins the background's 440 Hz tone from its start: louder after 1 s than before.
    const before = await audioLevel(spoken, 0.1, 0.8);
    const after = await audioLevel(spoken, 1.1, 0.8);
    expect(after.meanDb).toBeGreaterThan(before.meanDb + 2);
    expect(before.meanDb).toBeGreaterThan(-30);
    const silent = join(workDir, "silent-overlay.mp4");
    await composeVideo({ background, overlays: [portrait], output: silent, workDir });
    expect(await streamHash(silent, "a:0")).toBe(await streamHash(background, "a:0"));
  });

  it("keeps the overlay's audio from its start, or mixes both", async () => {
    const workDir = await freshWorkDir();
    const overlayOnly = join(workDir, "overlay-audio.mp4");
    await composeVideo({ background, overlays: [overlay], specs: [{ startSeconds: 1 }], audio: "overlay", output: overlayOnly, workDir });
    expect((await audioLevel(overlayOnly, 0, 0.9)).maxDb).toBeLessThan(-80);
    expect((await audioLevel(overlayOnly, 1.1, 0.8)).meanDb).toBeGreaterThan(-30);

    const mixed = join(workDir, "mixed.mp4");
    const result = await composeVideo({ background, overlays: [overlay], audio: "mix", output: mixed, workDir });
    expect(result.probe.audio?.codec).toBe("aac");
    expect((await audioLevel(mixed, 0.2, 1.5)).meanDb).toBeGreaterThan((await audioLevel(background, 0.2, 1.5)).meanDb);
    expect(Math.abs(result.probe.durationSeconds - 2)).toBeLessThanOrEqual(0.05);
  });

  it("takes several overlays, each in its own corner, and a portrait one that is fitted", async () => {
    const workDir = await freshWorkDir();
    const output = join(workDir, "output.mp4");
    const result = await composeVideo({ background, overlays: [overlay, portrait], specs: [{}, { size: 1, position: "center" }], output, workDir });
    expect(result.layouts[1]!.height).toBeLessThanOrEqual(720);
    expect(result.probe.video).toMatchObject({ width: 1280, height: 720 });
    expect((await streamSummary(output)).map((s) => s.type)).toEqual(["video", "audio"]);
  });

  it("refuses a composite without overlays or with a stream missing", async () => {
    const workDir = await freshWorkDir();
    const output = join(workDir, "output.mp4");
    await expect(composeVideo({ background, overlays: [], output, workDir })).rejects.toThrow(new MediaError("compose-video needs at least one overlay"));
    const audioOnly = join(dir, "tone.m4a");
    const { runFfmpeg } = await import("./run");
    await runFfmpeg(["-i", `file:${background}`, "-vn", "-c:a", "copy", "-f", "mp4", `file:${audioOnly}`]);
    await expect(composeVideo({ background: audioOnly, overlays: [overlay], output, workDir })).rejects.toThrow(
      new MediaError("the background has no video stream"),
    );
    await expect(composeVideo({ background, overlays: [audioOnly], output, workDir })).rejects.toThrow(new MediaError("overlay 1 has no video stream"));
    expect(await readdir(workDir)).toEqual([]);
  });

  it("builds a graph of numbers only, with every input behind the whitelists", async () => {
    const probes = { background: await probe(background), overlays: [await probe(overlay)] };
    const layouts = [overlayLayout(FULL, probes.overlays[0]!.video!, { cornerRadius: 10, borderWidth: 2 })];
    const args = buildComposeArgs(background, [overlay], probes, layouts, "mix", join(dir, "o.mp4"));
    const graph = args[args.indexOf("-filter_complex") + 1]!;
    expect(graph).not.toContain(dir);
    expect(graph).toMatch(/overlay=x=\d+:y=\d+:eof_action=pass/);
    args.forEach((arg, i) => {
      if (arg === "-i")
        expect(args.slice(i - 4, i + 2)).toEqual([
          "-protocol_whitelist",
          "file",
          "-format_whitelist",
          expect.any(String),
          "-i",
          expect.stringMatching(/^file:\//),
        ]);
    });
  });
});
