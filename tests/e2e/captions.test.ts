/**
 * The captions node end to end through HTTP, the five services as real processes: a video captioned from a local
 * voiceover (timed as spoken), from the ElevenLabs fake's alignment, and from a bare script (spread by word
 * count). Checks the burned-in text in decoded frames and the WebVTT/SRT files the output route serves.
 */
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeTestClip } from "@vp/media";
import { type FakeProviders, startFakeProviders, startTestStack, type TestStack } from "@vp/testkit";
import { client, type Client, type Node } from "./helpers";

const exec = promisify(execFile);

const SCRIPT = "Welcome to the launch. Our product makes video from pipelines. Press play and watch it go.";
const WIDTH = 640;
const HEIGHT = 360;

let fixture: TestStack;
let fakes: FakeProviders;
let api: Client;

beforeAll(async () => {
  fakes = await startFakeProviders({ pollsUntilDone: 1 });
  fixture = await startTestStack({ prefix: "vp-e2e-captions-", jobAckWaitMs: 10_000, env: { ...fakes.env, PROVIDER_POLL_INTERVAL_MS: "100" } });
  api = client(fixture.stack.baseUrl);
});

afterAll(async () => {
  await fixture?.cleanup();
  await fakes?.close();
});

/** A dark, silent-looking clip uploaded as a video asset (dark, so caption pixels stand out). */
async function uploadDarkClip(pipelineId: string, id: string, seconds: number) {
  const path = join(fixture.scratch, `${pipelineId}-${id}.mp4`);
  await makeTestClip({ path, durationSeconds: seconds, width: WIDTH, height: HEIGHT, fps: 25, color: "#181818", audio: true });
  await api.ok("POST", `/pipelines/${pipelineId}/nodes`, { id, title: "Background", type: "asset", asset: { type: "video" } });
  await api.ok("PUT", `/pipelines/${pipelineId}/nodes/${id}/asset`, new Uint8Array(await readFile(path)), { "content-type": "video/mp4" });
}

async function runToCompletion(pipelineId: string, nodeId: string): Promise<Node> {
  await api.ok("POST", `/pipelines/${pipelineId}/nodes/${nodeId}/execute`, { upstream: true });
  const node = await api.waitForStatus(pipelineId, nodeId, ["completed", "failed"], 120_000);
  expect(node.status, JSON.stringify(node.metadata)).toBe("completed");
  return node;
}

async function download(pipelineId: string, nodeId: string, file?: string): Promise<{ status: number; type: string | null; body: Buffer }> {
  const query = file ? `?file=${file}` : "";
  const response = await fetch(`${api.root}/pipelines/${pipelineId}/nodes/${nodeId}/output${query}`, { headers: await api.authHeader() });
  return { status: response.status, type: response.headers.get("content-type"), body: Buffer.from(await response.arrayBuffer()) };
}

/** Bright pixels (luma > 200) in a horizontal band of the frame at `seconds`. */
async function brightPixels(video: string, seconds: number, band: "bottom" | "top"): Promise<number> {
  const { stdout } = await exec(
    "ffmpeg",
    ["-v", "error", "-ss", seconds.toFixed(3), "-i", video, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-"],
    { encoding: "buffer", maxBuffer: 16 * 1024 * 1024 },
  );
  const rows = band === "bottom" ? [Math.floor(HEIGHT * 0.75), HEIGHT] : [0, Math.floor(HEIGHT * 0.25)];
  let count = 0;
  for (let y = rows[0]!; y < rows[1]!; y++) for (let x = 0; x < WIDTH; x++) if (stdout[y * WIDTH + x]! > 200) count++;
  return count;
}

/** WebVTT cues as seconds. */
function parseVtt(text: string): Array<{ start: number; end: number; text: string }> {
  const seconds = (t: string) => {
    const [h, m, s] = t.split(":");
    return Number(h) * 3600 + Number(m) * 60 + Number(s);
  };
  expect(text.startsWith("WEBVTT")).toBe(true);
  return [...text.matchAll(/(\d\d:\d\d:\d\d\.\d{3}) --> (\d\d:\d\d:\d\d\.\d{3})[^\n]*\n([\s\S]*?)(?:\n\n|\n?$)/g)].map((m) => ({
    start: seconds(m[1]!),
    end: seconds(m[2]!),
    text: m[3]!.replace(/\n/g, " "),
  }));
}

/** Silences ffmpeg finds in an audio file: [start, end] in seconds. */
async function silences(audio: string): Promise<Array<[number, number]>> {
  const { stderr } = await exec("ffmpeg", ["-hide_banner", "-i", audio, "-af", "silencedetect=noise=-40dB:d=0.08", "-f", "null", "-"]);
  const starts = [...stderr.matchAll(/silence_start: ([\d.]+)/g)].map((m) => Number(m[1]));
  const ends = [...stderr.matchAll(/silence_end: ([\d.]+)/g)].map((m) => Number(m[1]));
  return starts.map((s, i) => [s, ends[i] ?? Number.POSITIVE_INFINITY]);
}

describe("captions", () => {
  it("captions a video from a local voiceover: cues at the measured sentence boundaries, text in the frame only while spoken", async () => {
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "Captions from a local voiceover" });
    const p = pipeline.id as string;
    await api.ok("POST", `/pipelines/${p}/nodes`, { id: "script", title: "Script", type: "asset", asset: { type: "text", content: SCRIPT } });
    await api.ok("POST", `/pipelines/${p}/nodes`, {
      id: "vo",
      title: "Voiceover",
      type: "generate-voiceover",
      inputs: { script: ["script"] },
      config: { provider: "local" },
    });
    await uploadDarkClip(p, "bg", 14);
    await api.ok("POST", `/pipelines/${p}/nodes`, { id: "cap", title: "Captions", type: "captions", inputs: { video: ["bg"], speech: ["vo"] } });
    const cap = await runToCompletion(p, "cap");
    const vo = await api.node(p, "vo");

    const timing = vo.output!.timing as { source: string; sentences: Array<{ start: number; end: number; text: string }> };
    expect(timing.source).toBe("measured");
    expect(timing.sentences.map((s) => s.text)).toEqual(["Welcome to the launch.", "Our product makes video from pipelines.", "Press play and watch it go."]);
    expect(cap.output).toMatchObject({ type: "video", width: WIDTH, height: HEIGHT, timing: { source: "measured" } });
    expect(Object.keys(cap.output!.files as object).sort()).toEqual(["srt", "vtt"]);

    // The WebVTT cues sit within 100 ms of the measured sentence boundaries.
    const vtt = await download(p, "cap", "vtt");
    expect(vtt.status).toBe(200);
    expect(vtt.type).toMatch(/^text\/vtt/);
    const cues = parseVtt(vtt.body.toString("utf8"));
    expect(cues.map((c) => c.text)).toEqual(timing.sentences.map((s) => s.text));
    for (const [i, cue] of cues.entries()) {
      expect(Math.abs(cue.start - timing.sentences[i]!.start), `cue ${i} start`).toBeLessThan(0.1);
      expect(Math.abs(cue.end - timing.sentences[i]!.end), `cue ${i} end`).toBeLessThan(0.1);
    }
    // ...and the measured boundaries are where the voice really pauses: each sentence ends in a silence of the audio.
    const voice = join(fixture.scratch, `${p}-vo.m4a`);
    await writeFile(voice, (await download(p, "vo")).body);
    const quiet = await silences(voice);
    for (const cue of cues.slice(0, -1)) {
      expect(
        quiet.some(([s, e]) => cue.end >= s - 0.1 && cue.end <= e + 0.1),
        `sentence end ${cue.end} is in no silence of ${JSON.stringify(quiet)}`,
      ).toBe(true);
    }
    const srt = await download(p, "cap", "srt");
    expect(srt.status).toBe(200);
    expect(srt.body.toString("utf8")).toMatch(/^1\r?\n00:00:0\d,\d{3} --> /);
    expect((await download(p, "cap", "nope")).status).toBe(404);

    // Decoded frames: text in the bottom band inside a sentence, none between two sentences or after the speech.
    const video = join(fixture.scratch, `${p}-cap.mp4`);
    await writeFile(video, (await download(p, "cap")).body);
    const [first, second] = cues;
    expect(await brightPixels(video, (first!.start + first!.end) / 2, "bottom")).toBeGreaterThan(100);
    expect(await brightPixels(video, (second!.start + second!.end) / 2, "bottom")).toBeGreaterThan(100);
    expect(second!.start - first!.end, "a pause between sentences").toBeGreaterThan(0.2);
    expect(await brightPixels(video, (first!.end + second!.start) / 2, "bottom")).toBeLessThan(5);
    expect(await brightPixels(video, cues.at(-1)!.end + 1, "bottom")).toBeLessThan(5);
    expect(await brightPixels(video, (first!.start + first!.end) / 2, "top")).toBeLessThan(5);
  });

  it("captions from the ElevenLabs fake's character alignment", async () => {
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "Captions from ElevenLabs" });
    const p = pipeline.id as string;
    await api.ok("POST", `/pipelines/${p}/nodes`, {
      id: "vo",
      title: "Voiceover",
      type: "generate-voiceover",
      config: { provider: "elevenlabs", script: SCRIPT },
    });
    await uploadDarkClip(p, "bg", 14);
    await api.ok("POST", `/pipelines/${p}/nodes`, {
      id: "cap",
      title: "Captions",
      type: "captions",
      inputs: { video: ["bg"], speech: ["vo"] },
      config: { position: "top", textColor: "#ffff00" },
    });
    const cap = await runToCompletion(p, "cap");
    const vo = await api.node(p, "vo");
    const timing = vo.output!.timing as { source: string; sentences: Array<{ start: number; end: number; text: string }> };
    expect(timing.source).toBe("provider");
    expect(timing.sentences).toHaveLength(3);
    expect(cap.output).toMatchObject({ timing: { source: "provider" } });
    const cues = parseVtt((await download(p, "cap", "vtt")).body.toString("utf8"));
    for (const [i, cue] of cues.entries()) expect(Math.abs(cue.start - timing.sentences[i]!.start)).toBeLessThan(0.1);
    const video = join(fixture.scratch, `${p}-cap.mp4`);
    await writeFile(video, (await download(p, "cap")).body);
    const mid = (cues[0]!.start + cues[0]!.end) / 2;
    // Yellow text: luma about 226, bright in gray.
    expect(await brightPixels(video, mid, "top")).toBeGreaterThan(100);
    expect(await brightPixels(video, mid, "bottom")).toBeLessThan(5);
  });

  it("captions from a bare script spread by word count, and says so", async () => {
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "Captions from a script" });
    const p = pipeline.id as string;
    await api.ok("POST", `/pipelines/${p}/nodes`, { id: "script", title: "Script", type: "asset", asset: { type: "text", content: SCRIPT } });
    await uploadDarkClip(p, "bg", 9);
    await api.ok("POST", `/pipelines/${p}/nodes`, { id: "cap", title: "Captions", type: "captions", inputs: { video: ["bg"], speech: ["script"] } });
    const cap = await runToCompletion(p, "cap");
    const timing = cap.output!.timing as { source: string; sentences: Array<{ start: number; end: number; text: string }> };
    expect(timing.source).toBe("estimated");
    // 4, 6 and 6 words over 9 s.
    expect(timing.sentences.map((s) => [s.start, s.end])).toEqual([
      [0, 2.25],
      [2.25, 5.625],
      [5.625, 9],
    ]);
  });

  it("refuses a captions node whose speech input is a video, before anything runs", async () => {
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "Captions refused" });
    const p = pipeline.id as string;
    await uploadDarkClip(p, "bg", 2);
    const res = await api.call("POST", `/pipelines/${p}/nodes`, { id: "cap", title: "Captions", type: "captions", inputs: { video: ["bg"], speech: ["bg"] } });
    expect(res.status).toBe(422);
    expect(JSON.stringify(res.body)).toMatch(/speech/);
  });
});
