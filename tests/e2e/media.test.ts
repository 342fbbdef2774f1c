/**
 * mix-audio, compose-video and render-code end to end: the five services as real processes on
 * local storage and this machine's ffmpeg and Chromium, driven through HTTP and SSE only.
 */
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { audioLevel, makeSpeechClip, makeTestClip, streamSummary, type TestClipOptions } from "@vp/media";
import { openSse, type SseEvent, type Stack, type TestBus, type TestDatabase, startTestStack, type TestStack } from "@vp/testkit";
import { client, type Client } from "./helpers";

const exec = promisify(execFile);

let db: TestDatabase;
let bus: TestBus;
let stack: Stack;
let api: Client;
let scratch: string;

let fixture: TestStack;

beforeAll(async () => {
  fixture = await startTestStack({ prefix: "vp-e2e-media-", jobAckWaitMs: 5000 });
  ({ db, bus, stack, scratch } = fixture);
  api = client(stack.baseUrl);
});

afterAll(async () => {
  await fixture?.cleanup();
});

/** Uploads a file as an asset node and runs its ingest to completion. */
async function uploadAsset(pipelineId: string, id: string, type: "video" | "audio", path: string, contentType: string) {
  await api.ok("POST", `/pipelines/${pipelineId}/nodes`, { id, title: id, type: "asset", asset: { type } });
  await api.ok("PUT", `/pipelines/${pipelineId}/nodes/${id}/asset`, new Uint8Array(await readFile(path)), { "content-type": contentType });
  await api.ok("POST", `/pipelines/${pipelineId}/nodes/${id}/execute`);
  const node = await api.waitForStatus(pipelineId, id, ["completed", "failed"]);
  return node;
}

async function uploadClip(pipelineId: string, id: string, clip: Omit<TestClipOptions, "path">) {
  const path = join(scratch, `${pipelineId}-${id}.mp4`);
  await makeTestClip({ ...clip, path });
  const node = await uploadAsset(pipelineId, id, "video", path, "video/mp4");
  expect(node.status, JSON.stringify(node.metadata)).toBe("completed");
}

async function downloadOutput(pipelineId: string, nodeId: string): Promise<string> {
  const response = await fetch(`${api.root}/pipelines/${pipelineId}/nodes/${nodeId}/output`, { headers: await api.authHeader() });
  expect(response.status).toBe(200);
  const file = join(scratch, `${pipelineId}-${nodeId}-output.mp4`);
  await writeFile(file, Buffer.from(await response.arrayBuffer()));
  // Decoding every frame proves it plays, not just that the header parses.
  await exec("ffmpeg", ["-v", "error", "-i", file, "-f", "null", "-"]);
  return file;
}

const nodeEvents = (events: SseEvent[], nodeId: string) =>
  events
    .filter((e) => e.event === "node" && (e.data as { nodeId?: string }).nodeId === nodeId)
    .map((e) => e.data as { status: string; metadata?: { progress?: number; error?: string } });

describe("media nodes through HTTP", () => {
  it("compose-video over a 20 s background: the progress bar moves on SSE", async () => {
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "E2E compose" });
    await uploadClip(pipeline.id, "bg", { durationSeconds: 20, width: 1280, height: 720, fps: 25 });
    await uploadClip(pipeline.id, "ov", { durationSeconds: 8, width: 640, height: 360, fps: 25, color: "orange" });
    await api.ok("POST", `/pipelines/${pipeline.id}/nodes`, {
      id: "pip",
      title: "Picture in picture",
      type: "compose-video",
      inputs: { background: ["bg"], overlays: ["ov"] },
      config: { overlays: [{ position: "bottom-right", size: 0.25, startSeconds: 2, cornerRadius: 16, borderWidth: 4 }] },
    });
    const watcher = openSse(`${api.root}/pipelines/${pipeline.id}/events`);
    await watcher.waitFor((events) => events.some((e) => e.event === "snapshot"));
    await api.ok("POST", `/pipelines/${pipeline.id}/nodes/pip/execute`);
    await watcher.waitFor((events) => nodeEvents(events, "pip").some((n) => n.status === "completed" || n.status === "failed"), 120_000);
    await watcher.close();

    const states = nodeEvents(watcher.events, "pip");
    const completedAt = states.findIndex((n) => n.status === "completed");
    expect(completedAt, JSON.stringify(states.at(-1))).toBeGreaterThan(0);
    const percents = states
      .slice(0, completedAt)
      .filter((n) => n.status === "in_progress" && typeof n.metadata?.progress === "number")
      .map((n) => n.metadata!.progress!);
    expect(percents.length, `progress seen: ${percents.join(", ")}`).toBeGreaterThanOrEqual(5);
    expect(percents).toEqual([...new Set(percents)].sort((a, b) => a - b));

    const node = await api.node(pipeline.id, "pip");
    expect(node.output).toMatchObject({ type: "video", width: 1280, height: 720, videoCodec: "h264" });
    expect(Math.abs((node.output!.duration as number) - 20)).toBeLessThanOrEqual(0.1);
    expect(node.metadata!.cost).toBe(0);
    const file = await downloadOutput(pipeline.id, "pip");
    expect((await streamSummary(file)).map((s) => s.type)).toEqual(["video", "audio"]);
  }, 180_000);

  it("mix-audio replaces a video's tone with an uploaded voice", async () => {
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "E2E mix" });
    await uploadClip(pipeline.id, "video", { durationSeconds: 4, width: 320, height: 240, fps: 30 });
    const voicePath = join(scratch, "voice.wav");
    await makeSpeechClip({ path: voicePath, text: "This is the voice over, replacing the tone.", durationSeconds: 3, workDir: scratch });
    const voice = await uploadAsset(pipeline.id, "voice", "audio", voicePath, "audio/wav");
    expect(voice.status, JSON.stringify(voice.metadata)).toBe("completed");
    await api.ok("POST", `/pipelines/${pipeline.id}/nodes`, {
      id: "mix",
      title: "Voice over",
      type: "mix-audio",
      inputs: { video: ["video"], audio: ["voice"] },
      config: { lengthMismatch: "pad" },
    });
    await api.ok("POST", `/pipelines/${pipeline.id}/nodes/mix/execute`);
    const node = await api.waitForStatus(pipeline.id, "mix", ["completed", "failed"]);
    expect(node.status, JSON.stringify(node.metadata)).toBe("completed");
    const file = await downloadOutput(pipeline.id, "mix");
    const streams = await streamSummary(file);
    expect(streams.map((s) => s.type)).toEqual(["video", "audio"]);
    expect(Math.abs((node.output!.duration as number) - 4)).toBeLessThanOrEqual(0.05);
    expect((await audioLevel(file, 0, 3)).meanDb).toBeGreaterThan(-45);
    expect((await audioLevel(file, 3.1, 0.85)).maxDb).toBeLessThan(-80);

    // A mix whose "audio" is a video is refused before any work: the edge breaks the input schema.
    const refused = await api.call("POST", `/pipelines/${pipeline.id}/nodes`, {
      id: "bad",
      title: "Wrong",
      type: "mix-audio",
      inputs: { video: ["video"], audio: ["video"] },
    });
    expect(refused.status).toBe(422);
    expect(JSON.stringify(refused.body)).toMatch(/input \\?"audio\\?" accepts audio, but node \\?"video\\?" produces video/);
  });

  it("render-code: a code asset becomes a typing animation; a kill mid-render leaves no Chromium", async () => {
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "E2E render" });
    const code = Array.from({ length: 12 }, (_, i) => `const step${i} = await pipeline.run("node-${i}"); // ${i + 1}`).join("\n");
    await api.ok("POST", `/pipelines/${pipeline.id}/nodes`, { id: "code", title: "Code", type: "asset", asset: { type: "text", content: code } });
    await api.ok("POST", `/pipelines/${pipeline.id}/nodes/code/execute`);
    expect((await api.waitForStatus(pipeline.id, "code", ["completed", "failed"])).status).toBe("completed");
    await api.ok("POST", `/pipelines/${pipeline.id}/nodes`, {
      id: "anim",
      title: "Typing",
      type: "render-code",
      inputs: { code: ["code"] },
      config: { language: "typescript", typingSpeed: 120, width: 320, height: 180, fps: 15 },
    });
    await api.ok("POST", `/pipelines/${pipeline.id}/nodes/anim/execute`);

    // Wait until Chromium renders frames under the executor, note every process of the render, then SIGKILL the executor.
    const victim = stack.services.get("executor-ffmpeg")!;
    const rendering = new Map<number, string>();
    const deadline = Date.now() + 90_000;
    for (;;) {
      for (const p of await descendants(victim.pid)) rendering.set(p.pid, p.comm);
      const status = await api.node(pipeline.id, "anim");
      if ([...rendering.values()].some((c) => /chrom/i.test(c)) && ((status.metadata?.progress as number | undefined) ?? 0) > 10) break;
      if (Date.now() > deadline) throw new Error(`render never got going: ${JSON.stringify(status.metadata)}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    victim.kill("SIGKILL");
    await victim.exited;
    const until = Date.now() + 10_000;
    let left = await alive([...rendering.keys()]);
    while (left.length && Date.now() < until) {
      await new Promise((r) => setTimeout(r, 100));
      left = await alive([...rendering.keys()]);
    }
    expect(left.filter((p) => rendering.get(p.pid) === p.comm)).toEqual([]);

    // The restarted executor renders the job again (a retry) and the output is the expected length.
    await stack.start("executor-ffmpeg");
    const node = await api.waitForStatus(pipeline.id, "anim", ["completed", "failed"], 300_000);
    expect(node.status, JSON.stringify(node.metadata)).toBe("completed");
    // The redelivery is counted (attempt - 1; a pull the killed process left behind may take one more).
    expect(node.metadata!.retries).toBeGreaterThanOrEqual(1);
    expect(node.metadata!.retries).toBe((node.metadata!.attempt as number) - 1);
    // 0.5 s + ceil(chars / 120 * 15) frames + 1.5 s, at 15 fps.
    const frames = 8 + Math.ceil((code.length / 120) * 15) + 23;
    expect(Math.abs((node.output!.duration as number) - frames / 15)).toBeLessThanOrEqual(1 / 15 + 1e-6);
    expect(node.output).toMatchObject({ width: 320, height: 180, videoCodec: "h264" });
    await downloadOutput(pipeline.id, "anim");
  }, 360_000);

  it("an uploaded 'video' that is an HLS playlist fails its node with the reason", async () => {
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "E2E hostile" });
    await api.ok("POST", `/pipelines/${pipeline.id}/nodes`, { id: "evil", title: "Playlist", type: "asset", asset: { type: "video" } });
    const playlist = "#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10.0,\n/etc/passwd\n#EXT-X-ENDLIST\n";
    await api.ok("PUT", `/pipelines/${pipeline.id}/nodes/evil/asset`, new TextEncoder().encode(playlist), { "content-type": "video/mp4" });
    await api.ok("POST", `/pipelines/${pipeline.id}/nodes/evil/execute`);
    const node = await api.waitForStatus(pipeline.id, "evil", ["completed", "failed"]);
    expect(node.status).toBe("failed");
    expect(node.metadata!.error).toBe("Asset file: not a readable media file: its format (hls) is not an accepted media container");
    expect(node.metadata!.retries ?? 0).toBe(0);
  });
});

interface Proc {
  pid: number;
  ppid: number;
  comm: string;
  state: string;
}

async function processes(): Promise<Proc[]> {
  const { readdir } = await import("node:fs/promises");
  const out: Proc[] = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    if (!stat) continue;
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    out.push({ pid: Number(entry), comm: stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")), ppid: Number(fields[1]), state: fields[0]! });
  }
  return out;
}

async function descendants(root: number): Promise<Proc[]> {
  const all = await processes();
  const found: Proc[] = [];
  const frontier = [root];
  while (frontier.length) {
    const parent = frontier.pop()!;
    for (const p of all) if (p.ppid === parent && p.state !== "Z") found.push(p), frontier.push(p.pid);
  }
  return found;
}

async function alive(pids: number[]): Promise<Proc[]> {
  const all = new Map((await processes()).filter((p) => p.state !== "Z").map((p) => [p.pid, p]));
  return pids.map((pid) => all.get(pid)).filter((p): p is Proc => p !== undefined);
}
