/**
 * AI nodes with no API key configured, end to end: the five services as
 * real processes; every AI node runs on the local providers (espeak-ng, ffmpeg) and produces playable files; a
 * node that names a paid provider fails with "<PROVIDER>_API_KEY is not configured". Nothing leaves this machine.
 */
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openSse, type Stack, type TestBus, type TestDatabase, startTestStack, type TestStack } from "@vp/testkit";
import { runAiDemo, AI_DEMO_SCRIPT } from "../../scripts/demo-ai";
import { client, type Client } from "./helpers";

const exec = promisify(execFile);

let db: TestDatabase;
let bus: TestBus;
let stack: Stack;
let api: Client;
let scratch: string;

/** No key, whatever the developer's shell exports: an empty variable counts as not configured. */
const NO_KEYS = { HEYGEN_API_KEY: "", ELEVENLABS_API_KEY: "", GEMINI_API_KEY: "", VEO_API_KEY: "", RUNWAY_API_KEY: "" };

let fixture: TestStack;

beforeAll(async () => {
  fixture = await startTestStack({ prefix: "vp-e2e-ai-local-", jobAckWaitMs: 5000, env: NO_KEYS });
  ({ db, bus, stack, scratch } = fixture);
  api = client(stack.baseUrl);
});

afterAll(async () => {
  await fixture?.cleanup();
});

/** ffprobe of the bytes the gateway serves for a node's output. */
async function probeOutput(pipelineId: string, nodeId: string) {
  const response = await fetch(`${api.root}/pipelines/${pipelineId}/nodes/${nodeId}/output`, { headers: await api.authHeader() });
  expect(response.status).toBe(200);
  const file = join(scratch, `${pipelineId}-${nodeId}`);
  await writeFile(file, Buffer.from(await response.arrayBuffer()));
  const { stdout } = await exec("ffprobe", ["-v", "error", "-show_entries", "format=duration:stream=codec_type,codec_name", "-of", "json", file]);
  const info = JSON.parse(stdout) as { format: { duration: string }; streams: Array<{ codec_type: string; codec_name: string }> };
  // Decoding every frame proves it plays, not just that the header parses.
  await exec("ffmpeg", ["-v", "error", "-i", file, "-f", "null", "-"]);
  return { duration: Number(info.format.duration), streams: info.streams.map((s) => `${s.codec_type}:${s.codec_name}`).sort() };
}

describe("AI nodes with local providers (no API keys)", () => {
  it("runs the demo: script asset -> voiceover and talking head, plus an animation; playable files labelled local", async () => {
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "AI local e2e" });
    const watcher = openSse(`${api.root}/pipelines/${pipeline.id}/events`);
    await watcher.waitFor((events) => events.some((e) => e.event === "snapshot"));

    const demo = await runAiDemo({ apiRoot: api.root, token: await stack.token(), pipelineId: pipeline.id, timeoutMs: 90_000 });
    const { voiceover, presenter, animation } = demo.nodes;

    for (const node of [voiceover, presenter, animation]) {
      expect(node.status).toBe("completed");
      expect(node.output).toMatchObject({ provider: "local", local: true, label: "local draft" });
      expect(node.metadata).toMatchObject({ provider: "local", providerJob: { phase: "local", provider: "local" } });
      expect(node.metadata).not.toHaveProperty("providerJobId");
      expect(typeof node.metadata?.estimatedCost).toBe("number");
      expect(node.metadata?.cost).toBeGreaterThanOrEqual(0);
      expect(node.metadata?.cost).toBeLessThan(0.01);
    }
    expect(voiceover.output).toMatchObject({ type: "audio", contentType: "audio/mp4", voiceId: "en-us" });
    expect(presenter.output).toMatchObject({ type: "video", width: 640, height: 360, videoCodec: "h264", audioCodec: "aac" });
    expect(animation.output).toMatchObject({ type: "video", width: 640, height: 360, videoCodec: "h264" });

    const voice = await probeOutput(pipeline.id, "voiceover");
    expect(voice.streams).toEqual(["audio:aac"]);
    // ~30 words at espeak-ng's 175 words per minute (x1.05).
    expect(voice.duration).toBeGreaterThan(6);
    const talking = await probeOutput(pipeline.id, "presenter");
    expect(talking.streams).toEqual(["audio:aac", "video:h264"]);
    expect(Math.abs(talking.duration - voice.duration)).toBeLessThan(1.5);
    const anim = await probeOutput(pipeline.id, "animation");
    expect(anim.streams).toEqual(["audio:aac", "video:h264"]);
    expect(anim.duration).toBeCloseTo(4, 0);

    // The talking head went pending -> queued -> in_progress -> completed live on SSE, with its progress.
    await watcher.waitFor((events) =>
      events.some((e) => (e.data as { nodeId?: string; status?: string }).nodeId === "presenter" && (e.data as { status?: string }).status === "completed"),
    );
    const statuses = watcher.events
      .filter((e) => e.event === "node" && (e.data as { nodeId: string }).nodeId === "presenter")
      .map((e) => (e.data as { status: string }).status)
      .filter((s, i, all) => s !== all[i - 1]);
    expect(statuses).toEqual(["queued", "in_progress", "completed"]);
    await watcher.close();
    expect(AI_DEMO_SCRIPT.length).toBeGreaterThan(100);
  });

  it("takes the script from config when no script input is connected; fails clearly when there is neither", async () => {
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "AI config script" });
    await api.ok("POST", `/pipelines/${pipeline.id}/nodes`, {
      id: "say",
      title: "Say",
      type: "generate-voiceover",
      config: { script: "Short and sweet.", voiceId: "en-gb" },
    });
    await api.ok("POST", `/pipelines/${pipeline.id}/nodes`, { id: "mute", title: "Mute", type: "talking-head", config: {} });
    await api.ok("POST", `/pipelines/${pipeline.id}/nodes/say/execute`);
    await api.ok("POST", `/pipelines/${pipeline.id}/nodes/mute/execute`);
    const say = await api.waitForStatus(pipeline.id, "say", ["completed", "failed"]);
    expect(say.status, JSON.stringify(say.metadata)).toBe("completed");
    expect(say.output).toMatchObject({ type: "audio", provider: "local", voiceId: "en-gb" });
    const mute = await api.waitForStatus(pipeline.id, "mute", ["completed", "failed"]);
    expect(mute.status).toBe("failed");
    expect(mute.metadata?.error).toBe('talking-head needs a script: connect a text asset to "script" or set config.script');
    expect(mute.metadata?.retries).toBe(0);
  });

  it("fails a node that names a paid provider without its key, at once and without retries", async () => {
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "AI no keys" });
    await api.ok("POST", `/pipelines/${pipeline.id}/nodes`, {
      id: "th",
      title: "Avatar",
      type: "talking-head",
      config: { provider: "heygen", avatarId: "a", voiceId: "v", script: "Hi" },
    });
    await api.ok("POST", `/pipelines/${pipeline.id}/nodes`, {
      id: "vo",
      title: "Voice",
      type: "generate-voiceover",
      config: { provider: "elevenlabs", script: "Hi" },
    });
    await api.ok("POST", `/pipelines/${pipeline.id}/nodes`, { id: "veo", title: "Veo", type: "generate-animation", config: { provider: "veo3", prompt: "x" } });
    await api.ok("POST", `/pipelines/${pipeline.id}/nodes`, {
      id: "rw",
      title: "Runway",
      type: "generate-animation",
      config: { provider: "runway", prompt: "x" },
    });
    for (const id of ["th", "vo", "veo", "rw"]) await api.ok("POST", `/pipelines/${pipeline.id}/nodes/${id}/execute`);
    const expected: Record<string, string> = {
      th: "HEYGEN_API_KEY is not configured",
      vo: "ELEVENLABS_API_KEY is not configured",
      veo: "GEMINI_API_KEY is not configured",
      rw: "RUNWAY_API_KEY is not configured",
    };
    for (const [id, error] of Object.entries(expected)) {
      const node = await api.waitForStatus(pipeline.id, id, ["completed", "failed"]);
      expect(node.status).toBe("failed");
      expect(node.metadata).toMatchObject({ error, retries: 0 });
      expect(node.metadata).not.toHaveProperty("providerJob");
    }
  });

  it("rejects an unknown provider at the API, before anything runs", async () => {
    const { pipeline } = await api.ok("POST", "/pipelines", { title: "AI bad provider" });
    const res = await api.call("POST", `/pipelines/${pipeline.id}/nodes`, { title: "X", type: "talking-head", config: { provider: "sora" } });
    expect(res.status).toBe(422);
    expect(res.body.error).toMatch(/^config: .*provider/);
  });
});
