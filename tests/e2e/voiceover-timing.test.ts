/**
 * Voiceovers record when each sentence is said (`output.timing`), end to end: the services as processes, a
 * generate-voiceover node run through the gateway, its output downloaded and listened to with ffmpeg. The local
 * voice measures each sentence (checked against the silences ffmpeg's silencedetect finds in the audio); the
 * ElevenLabs fake's character alignment gives the provider's timing; audio recovered from ElevenLabs' history has
 * no alignment and is estimated by word count.
 */
import { execFile } from "node:child_process";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { splitSentences, spreadByWords, type SpeechTiming } from "@vp/contracts";
import { startFakeProviders, startTestStack, type FakeProviders, type TestStack } from "@vp/testkit";
import { client, type Client, type Node } from "./helpers";

const exec = promisify(execFile);

const SCRIPT = "Loops repeat a block of code while a condition holds. Stop! Then we write three of them, one after another.";
const SENTENCES = ["Loops repeat a block of code while a condition holds.", "Stop!", "Then we write three of them, one after another."];
/** Ack wait of the job consumers; the provider timeout stays under it, as executor-ai requires. */
const ACK_WAIT_MS = 5000;
const PROVIDER_TIMEOUT_MS = 3000;

let fakes: FakeProviders;
let fixture: TestStack;
let api: Client;

beforeAll(async () => {
  fakes = await startFakeProviders({ pollsUntilDone: 1 });
  fixture = await startTestStack({
    prefix: "vp-e2e-voiceover-timing-",
    jobAckWaitMs: ACK_WAIT_MS,
    services: ["state-writer", "scheduler", "executor-ai", "gateway"],
    env: { ...fakes.env, JOB_MAX_ATTEMPTS: "3", PROVIDER_HTTP_TIMEOUT_MS: String(PROVIDER_TIMEOUT_MS), PROVIDER_HTTP_RETRIES: "1" },
  });
  api = client(fixture.stack.baseUrl);
});

afterAll(async () => {
  await fixture?.cleanup();
  await fakes?.close();
});

beforeEach(() => fakes.reset());

/** A pipeline with one voiceover node of `config`, executed until it ends. */
async function voiceover(title: string, config: Record<string, unknown>): Promise<{ pipelineId: string; node: Node }> {
  const { pipeline } = await api.ok("POST", "/pipelines", { title });
  await api.ok("POST", `/pipelines/${pipeline.id}/nodes`, { id: "vo", title, type: "generate-voiceover", config: { script: SCRIPT, ...config } });
  await api.ok("POST", `/pipelines/${pipeline.id}/nodes/vo/execute`);
  const node = await api.waitForStatus(pipeline.id, "vo", ["completed", "failed"], 90_000);
  expect(node.status, `${JSON.stringify(node.metadata)} ${executorLog()}`).toBe("completed");
  return { pipelineId: pipeline.id, node };
}

function executorLog(): string {
  const lines = fixture.stack.services.get("executor-ai")?.logs ?? [];
  return JSON.stringify(lines.filter((l) => l.nodeId === "vo").map((l) => [l.msg, l.err ?? l.reason ?? ""]));
}

/** The node's output as the gateway serves it, saved to the scratch directory, with its probed duration. */
async function download(pipelineId: string): Promise<{ file: string; duration: number }> {
  const response = await fetch(`${api.root}/pipelines/${pipelineId}/nodes/vo/output`, { headers: await api.authHeader() });
  expect(response.status).toBe(200);
  const file = join(fixture.scratch, `${pipelineId}.audio`);
  await writeFile(file, Buffer.from(await response.arrayBuffer()));
  const { stdout } = await exec("ffprobe", ["-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", file]);
  return { file, duration: Number(stdout.trim()) };
}

/** The silences ffmpeg's silencedetect finds (below -50 dB for at least 80 ms), in seconds. */
async function silences(file: string): Promise<Array<{ start: number; end: number }>> {
  const { stderr } = await exec("ffmpeg", ["-hide_banner", "-nostats", "-i", file, "-af", "silencedetect=noise=-50dB:d=0.08", "-f", "null", "-"]);
  const starts = [...stderr.matchAll(/silence_start: ([\d.]+)/g)].map((m) => Number(m[1]));
  const ends = [...stderr.matchAll(/silence_end: ([\d.]+)/g)].map((m) => Number(m[1]));
  return starts.map((start, i) => ({ start, end: ends[i] ?? Number.POSITIVE_INFINITY }));
}

function expectInOrder(timing: SpeechTiming) {
  expect(timing.sentences.map((s) => s.text)).toEqual(SENTENCES);
  for (const [i, s] of timing.sentences.entries()) {
    expect(s.end).toBeGreaterThanOrEqual(s.start);
    if (i > 0) expect(s.start).toBeGreaterThanOrEqual(timing.sentences[i - 1]!.end);
  }
}

describe("voiceover timing", () => {
  it("local (espeak-ng): measured per sentence, each its voiced part; every pause between two sentences is a silence of the audio", async () => {
    const { pipelineId, node } = await voiceover("Local timing", { provider: "local" });
    const timing = node.output!.timing as SpeechTiming;
    expect(timing.source).toBe("measured");
    expectInOrder(timing);
    // A sentence is its voiced part: the pause espeak-ng leaves after each lies between two sentences.
    expect(timing.sentences[0]!.start).toBeLessThan(0.1);
    for (let i = 1; i < timing.sentences.length; i++) expect(timing.sentences[i]!.start).toBeGreaterThan(timing.sentences[i - 1]!.end + 0.1);

    const { file, duration } = await download(pipelineId);
    const lastEnd = timing.sentences.at(-1)!.end;
    expect(lastEnd <= duration + 0.01 && lastEnd > duration - 0.8, `last end ${lastEnd} vs ${duration} s`).toBe(true);

    // Between two sentences espeak-ng leaves a pause: the boundary must fall inside (or within 100 ms of) a detected
    // silence, and the next sentence's speech must begin within 100 ms of it (where a caption cue would start).
    const quiet = await silences(file);
    const boundaries = timing.sentences.slice(1).map((s) => s.start);
    const errors = boundaries.map((b) => {
      const intoSilence = Math.min(...quiet.map((q) => (b < q.start ? q.start - b : b > q.end ? b - q.end : 0)));
      const toOnset = Math.min(...quiet.map((q) => Math.abs(q.end - b)));
      return { boundary: b, intoSilence, toOnset };
    });
    console.info(
      `local voiceover: ${duration.toFixed(3)} s (last end ${timing.sentences.at(-1)!.end} s), silences ${JSON.stringify(quiet)}, boundaries ${JSON.stringify(errors)}`,
    );
    for (const e of errors) {
      expect(e.intoSilence, JSON.stringify({ e, quiet })).toBeLessThan(0.1);
      expect(e.toOnset, JSON.stringify({ e, quiet })).toBeLessThan(0.1);
    }
    // ...and each sentence but the last ends within 100 ms of where the pause after it begins.
    for (const s of timing.sentences.slice(0, -1)) {
      expect(Math.min(...quiet.map((q) => Math.abs(q.start - s.end))), JSON.stringify({ end: s.end, quiet })).toBeLessThan(0.1);
    }
  });

  it("ElevenLabs: the provider's character alignment, mapped to the script's sentences", async () => {
    const { pipelineId, node } = await voiceover("ElevenLabs timing", { provider: "elevenlabs" });
    expect(fakes.elevenlabs.calls.map((c) => [c.endpoint, c.path])).toEqual([["create", "/v1/text-to-speech/JBFqnCBsd6RMkjVDRZzb/with-timestamps"]]);
    const timing = node.output!.timing as SpeechTiming;
    expect(timing.source).toBe("provider");
    expectInOrder(timing);
    // The fake spreads the characters evenly over its audio: a sentence starts where its first character does.
    const { duration } = await download(pipelineId);
    const perCharacter = duration / SCRIPT.length;
    for (const s of timing.sentences) expect(Math.abs(s.start - SCRIPT.indexOf(s.text) * perCharacter)).toBeLessThan(0.002);
    expect(Math.abs(timing.sentences.at(-1)!.end - duration)).toBeLessThan(0.05);
    expect(node.output).toMatchObject({ provider: "elevenlabs", providerJobId: [...fakes.elevenlabs.jobs.keys()][0], characters: SCRIPT.length });
  });

  it("ElevenLabs audio recovered from the history (no alignment) is spread by word count over its length, and the log says so", async () => {
    fakes.elevenlabs.fail("create", { kind: "hang" });
    const { pipelineId, node } = await voiceover("ElevenLabs lost answer", { provider: "elevenlabs" });
    expect(fakes.elevenlabs.creates).toBe(1);
    expect(fakes.elevenlabs.calls.map((c) => c.endpoint)).toEqual(["create", "lookup", "download"]);
    const timing = node.output!.timing as SpeechTiming;
    expect(timing.source).toBe("estimated");
    expectInOrder(timing);
    expect(timing.sentences).toEqual(spreadByWords(splitSentences(SCRIPT), node.output!.duration as number));
    const { duration } = await download(pipelineId);
    expect(Math.abs(timing.sentences.at(-1)!.end - duration)).toBeLessThan(0.05);
    expect(executorLog()).toContain("sentence timing estimated by word count");
  });
});
