/** The local providers with the machine's real espeak-ng and ffmpeg. */
import { createHash } from "node:crypto";
import { mkdir, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { fileArg, runFfmpeg } from "@vp/media";
import { WorkInputError } from "../errors";
import { animationLook, renderLocalAnimation, renderLocalTalkingHead, renderLocalVoiceover, wrapText } from "./render";

let root: string;
let n = 0;
const workDir = async () => {
  const d = join(root, `w${++n}`);
  await mkdir(d);
  return d;
};
const sha = async (path: string) =>
  createHash("sha256")
    .update(await readFile(path))
    .digest("hex");

/** Mean luma and chroma of the frame at `seconds` (how a test "sees" colours without a reference image). */
async function frameStats(path: string, seconds: number, dir: string): Promise<Buffer> {
  const out = join(dir, `frame-${++n}.rgb`);
  await runFfmpeg(["-ss", String(seconds), "-i", fileArg(path), "-frames:v", "1", "-vf", "scale=8:8", "-f", "rawvideo", "-pix_fmt", "rgb24", fileArg(out)]);
  return readFile(out);
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), "vp-local-"));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe("local voiceover (espeak-ng)", () => {
  const text = "Loops repeat a block of code while a condition holds. Today we write three of them.";

  it("speaks the text into an AAC track; speed and voice come from config", async () => {
    const normal = await renderLocalVoiceover({ workDir: await workDir(), text });
    expect(normal.probe.audio).toMatchObject({ codec: "aac", channels: 1 });
    expect(normal.probe.video).toBeUndefined();
    expect(normal.probe.durationSeconds).toBeGreaterThan(3);
    const fast = await renderLocalVoiceover({ workDir: await workDir(), text, speed: 2 });
    expect(fast.probe.durationSeconds).toBeLessThan(normal.probe.durationSeconds * 0.7);
    const german = await renderLocalVoiceover({ workDir: await workDir(), text, voice: "de", pitch: 80 });
    expect(await sha(german.path)).not.toBe(await sha(normal.path));
  });

  it("records when each sentence is said, measured, ending where the encoded audio ends", async () => {
    const r = await renderLocalVoiceover({ workDir: await workDir(), text });
    expect(r.timing.source).toBe("measured");
    expect(r.timing.sentences.map((s) => s.text)).toEqual(["Loops repeat a block of code while a condition holds.", "Today we write three of them."]);
    expect(r.timing.sentences[0]!.start).toBeLessThan(0.1);
    expect(r.timing.sentences[1]!.start).toBeGreaterThan(r.timing.sentences[0]!.end + 0.1);
    // The last sentence ends with its voice, before espeak-ng's closing pause.
    expect(r.timing.sentences[1]!.end).toBeLessThanOrEqual(r.probe.durationSeconds);
    expect(r.timing.sentences[1]!.end).toBeGreaterThan(r.probe.durationSeconds - 0.8);
  });

  it("refuses a voice espeak-ng does not have, and names that are not voice names", async () => {
    await expect(renderLocalVoiceover({ workDir: await workDir(), text, voice: "xx-nosuch" })).rejects.toThrow(
      new WorkInputError('espeak-ng has no voice "xx-nosuch": Error: The specified espeak-ng voice does not exist.'),
    );
    await expect(renderLocalVoiceover({ workDir: await workDir(), text, voice: "--help" })).rejects.toThrow(/is not an espeak-ng voice name/);
  });

  it("reads text that looks like options as text (stdin, not argv)", async () => {
    const r = await renderLocalVoiceover({ workDir: await workDir(), text: "-w /tmp/evil.wav --version" });
    expect(r.probe.durationSeconds).toBeGreaterThan(0.5);
  });
});

describe("local talking head", () => {
  it("is a presenter card with the voiceover as its sound track, as long as the speech", async () => {
    const dir = await workDir();
    const r = await renderLocalTalkingHead({ workDir: dir, title: `Intro: 100% "loops" %{pts} \\ 'quoted'`, text: "Welcome. Today: loops." });
    expect(r.probe.video).toMatchObject({ codec: "h264", width: 640, height: 360 });
    expect(r.probe.audio?.codec).toBe("aac");
    expect(r.probe.durationSeconds).toBeGreaterThan(1);
    expect(r.probe.durationSeconds).toBeLessThan(4);
    // Its sound track is the same measured speech a voiceover has; the picture runs 0.3 s past it.
    expect(r.timing).toMatchObject({ source: "measured", sentences: [{ text: "Welcome." }, { text: "Today: loops." }] });
    expect(r.timing.sentences[1]!.end).toBeLessThan(r.probe.durationSeconds - 0.3);
    expect(r.timing.sentences[1]!.end).toBeGreaterThan(r.probe.durationSeconds - 1.2);
    // The title reaches drawtext through a file, untouched.
    expect(await readFile(join(dir, "title.txt"), "utf8")).toBe(`Intro: 100% "loops" %{pts} \\\n'quoted'`);
  });

  it("takes its colours from the title and its size from config", async () => {
    const a = await renderLocalTalkingHead({ workDir: await workDir(), title: "Chapter one", text: "Hi.", width: 320, height: 240 });
    const b = await renderLocalTalkingHead({ workDir: await workDir(), title: "Chapter two", text: "Hi.", width: 320, height: 240 });
    expect(a.probe.video).toMatchObject({ width: 320, height: 240 });
    expect(await frameStats(a.path, 0.2, root)).not.toEqual(await frameStats(b.path, 0.2, root));
  });
});

describe("local animation", () => {
  it("follows the prompt deterministically: the same prompt gives the same file, another prompt another look", async () => {
    const one = await renderLocalAnimation({ workDir: await workDir(), prompt: "a calm ocean at dawn", durationSeconds: 1.5 });
    const again = await renderLocalAnimation({ workDir: await workDir(), prompt: "a calm ocean at dawn", durationSeconds: 1.5 });
    const other = await renderLocalAnimation({ workDir: await workDir(), prompt: "neon city rain", durationSeconds: 1.5 });
    expect(await sha(again.path)).toBe(await sha(one.path));
    expect(await sha(other.path)).not.toBe(await sha(one.path));
    expect(one.probe).toMatchObject({ video: { codec: "h264", width: 640, height: 360, fps: 25 }, audio: { codec: "aac", channels: 2 } });
    expect(one.probe.durationSeconds).toBeCloseTo(1.5, 1);
    const look = (p: string) => ({ pattern: animationLook(p).pattern, colors: animationLook(p).palette.colors });
    expect(look("a calm ocean at dawn")).toEqual(look("  A calm ocean at DAWN "));
  });

  it("uses every pattern for some prompt and renders portrait for 9:16", async () => {
    const patterns = new Set(["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"].map((p) => animationLook(p).pattern));
    expect([...patterns].sort()).toEqual(["cellauto", "gradients", "life"]);
    const portrait = await renderLocalAnimation({ workDir: await workDir(), prompt: "tall", durationSeconds: 1, aspectRatio: "9:16" });
    expect(portrait.probe.video).toMatchObject({ width: 360, height: 640 });
  });

  it("animates an image input as the first frame", async () => {
    const dir = await workDir();
    const image = join(dir, "first.png");
    await runFfmpeg(["-f", "lavfi", "-i", "color=c=red:s=400x300:d=1", "-frames:v", "1", "-f", "image2", fileArg(image)]);
    const r = await renderLocalAnimation({ workDir: dir, prompt: "zoom in", durationSeconds: 1, image: { path: image, format: "png_pipe" } });
    expect(r.probe.video).toMatchObject({ width: 640, height: 360 });
    const [red, green, blue] = await frameStats(r.path, 0.1, root);
    expect(red!).toBeGreaterThan(green! + 40);
    expect(red!).toBeGreaterThan(blue! + 40);
  });
});

describe("wrapText", () => {
  it("wraps to lines and marks what was cut", () => {
    expect(wrapText("one two three four", 9, 2)).toBe("one two\nthree…");
    expect(wrapText("short", 20, 2)).toBe("short");
  });
});
