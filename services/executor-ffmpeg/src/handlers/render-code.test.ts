import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { codeTiming, normalizeCode } from "@vp/code-animation";
import { createCodeRenderer, type CodeRenderer } from "@vp/code-animation/render";
import { decodeFrame, probe, regionDifference } from "@vp/media";
import { outputKey } from "@vp/storage";
import { WorkInputError } from "./errors";
import { createRenderCodeWork } from "./render-code";
import { createHandlerFixture, descendantsOf, PIPELINE, stillRunning, type HandlerFixture } from "./test-fixture";

const SNIPPET = `import { readFile } from "node:fs/promises";

interface Clip {
  id: string;
  seconds: number;
}

export async function totalLength(path: string): Promise<number> {
  const clips: Clip[] = JSON.parse(await readFile(path, "utf8"));
  // Sum every clip's length, in seconds.
  return clips.reduce((sum, clip) => sum + clip.seconds, 0);
}`;

const SIZE = { width: 480, height: 270 };
/** Process names a render starts: setpriv (Remotion's pdeathsig wrapper), Chromium and its helpers, Remotion's compositor and its ffmpeg. */
const RENDER_PROCESS = /setpriv|chrom|remotion|ffmpeg|ffprobe/i;
const FPS = 15;
const SPEED = 160;

let f: HandlerFixture;
let renderer: CodeRenderer;

beforeAll(async () => {
  f = await createHandlerFixture();
  renderer = createCodeRenderer({ bundleRoot: join(f.dir, "bundle") });
});
afterAll(async () => {
  await renderer?.close();
  await f?.cleanup();
});

describe("render-code work", () => {
  const work = () => createRenderCodeWork({ renderer });

  it("renders a 12-line TypeScript snippet to an MP4 of the expected duration and size", async () => {
    expect(SNIPPET.split("\n")).toHaveLength(12);
    const codeKey = outputKey(PIPELINE, "code", "j", "txt");
    await f.storage.put(codeKey, Buffer.from(SNIPPET));
    const codeNode = f.completed("code", { type: "text", s3Key: codeKey, contentType: "text/plain" });
    const config = { language: "typescript", theme: "dark", typingSpeed: SPEED, highlightLines: [11], ...SIZE, fps: FPS };
    const { ctx, progress, jobId } = await f.context(f.node("rc", "render-code", { config }), { code: [codeNode] });
    const { output, cost } = await work()(ctx);

    // 0.5 s lead-in + the characters at 160/s (whole frames, rounded up) + 1.5 s hold.
    const chars = normalizeCode(SNIPPET).length;
    const frames = Math.round(0.5 * FPS) + Math.ceil((chars / SPEED) * FPS) + Math.round(1.5 * FPS);
    expect(codeTiming({ code: normalizeCode(SNIPPET), typingSpeed: SPEED, fps: FPS }).durationInFrames).toBe(frames);
    expect(output).toMatchObject({ type: "video", s3Key: outputKey(PIPELINE, "rc", jobId, "mp4", 1), ...SIZE, videoCodec: "h264", contentType: "video/mp4" });
    expect(Math.abs(output.duration! - frames / FPS)).toBeLessThanOrEqual(1 / FPS + 1e-6);
    expect(cost).toBe(0);
    expect(progress.length).toBeGreaterThan(3);
    expect(progress).toEqual([...progress].sort((a, b) => a - b));

    const first = join(f.dir, "first.mp4");
    await f.storage.download(output.s3Key, first);
    const p = await probe(first);
    expect(p.video).toMatchObject({ ...SIZE, fps: FPS, pixFmt: "yuv420p" });
    expect(Math.abs(p.durationSeconds - frames / FPS)).toBeLessThanOrEqual(1 / FPS + 1e-6);
    // The typing shows: the first frame (lead-in, nothing typed) differs from the last (all typed).
    const [start, end] = await Promise.all([decodeFrame(first, 0, SIZE), decodeFrame(first, p.durationSeconds - 0.2, SIZE)]);
    expect(regionDifference(start, end, { x: 0, y: 0, ...SIZE })).toBeGreaterThan(2);
    expect((await readdir(ctx.workDir)).sort()).toEqual(["output.mp4"]);

    // Different code renders different frames (same settings, code from config this time).
    const other = "def hello(name):\n    return f'Hello, {name}!'\n\nprint(hello('world'))";
    const { ctx: ctx2 } = await f.context(f.node("rc2", "render-code", { config: { ...config, code: other, language: "python", highlightLines: [] } }));
    const { output: out2 } = await work()(ctx2);
    const second = join(f.dir, "second.mp4");
    await f.storage.download(out2.s3Key, second);
    const p2 = await probe(second);
    expect(p2.durationSeconds).toBeLessThan(p.durationSeconds);
    const end2 = await decodeFrame(second, p2.durationSeconds - 0.2, SIZE);
    expect(regionDifference(end, end2, { x: 0, y: 0, ...SIZE })).toBeGreaterThan(2);
  }, 240_000);

  it("fails at once on empty code, a non-text code input, or an animation over the length limit", async () => {
    const { ctx } = await f.context(f.node("e1", "render-code", { config: { code: "  \n\t\n" } }));
    await expect(work()(ctx)).rejects.toThrow(new WorkInputError("render-code has no code: connect a text asset to the code input or set config.code"));
    const video = f.completed("vid", { type: "video", s3Key: outputKey(PIPELINE, "vid", "j", "mp4") });
    const { ctx: ctx2 } = await f.context(f.node("e2", "render-code"), { code: [video] });
    await expect(work()(ctx2)).rejects.toThrow(new WorkInputError('input "code": node "vid" has no completed text output'));
    const { ctx: ctx3 } = await f.context(f.node("e3", "render-code", { config: { code: "x".repeat(50_000), typingSpeed: 1 } }));
    await expect(work()(ctx3)).rejects.toThrow(/^the animation would last 50002\.0 s .* over the limit of 600 s/);
  });

  it("a cancelled render leaves no Chromium or compositor behind", async () => {
    const controller = new AbortController();
    const code = SNIPPET.repeat(3);
    const { ctx, progress } = await f.context(f.node("c1", "render-code", { config: { code, typingSpeed: 60, ...SIZE, fps: FPS } }), {}, controller.signal);
    const run = work()(ctx).catch((e: unknown) => e);
    // Collect the render's processes while it runs: Chromium (its own process group) and its helpers.
    const seen = new Map<number, string>();
    const deadline = Date.now() + 60_000;
    while (!progress.some((p) => p > 10)) {
      if (Date.now() > deadline) throw new Error(`render did not progress: ${progress.join(",")}`);
      for (const p of await descendantsOf(process.pid)) seen.set(p.pid, p.comm);
      await new Promise((r) => setTimeout(r, 50));
    }
    for (const p of await descendantsOf(process.pid)) seen.set(p.pid, p.comm);
    // Only what the render started (the test runner's own helpers, such as esbuild, are not its business).
    for (const [pid, comm] of seen) if (!RENDER_PROCESS.test(comm)) seen.delete(pid);
    expect(
      [...seen.values()].some((comm) => /chrom/i.test(comm)),
      JSON.stringify([...seen.values()]),
    ).toBe(true);
    controller.abort(new Error("cancelled by the test"));
    const error = (await run) as Error;
    expect(error.name).toBe("RenderCancelledError");
    // Chromium's process-group kill and the compositor's exit take a moment.
    const until = Date.now() + 10_000;
    let left = await stillRunning([...seen.keys()]);
    while (left.length && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 100));
      left = await stillRunning([...seen.keys()]);
    }
    expect(left.filter((p) => seen.get(p.pid) === p.comm)).toEqual([]);
    expect(await readdir(ctx.workDir)).not.toContain("output.mp4");
  }, 180_000);
});
