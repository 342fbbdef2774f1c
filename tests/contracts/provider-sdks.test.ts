/**
 * The fake providers are only as good as their likeness to the real APIs: here each provider's official SDK
 * (@runwayml/sdk, @elevenlabs/elevenlabs-js, @google/genai) is driven against its fake, over create, status, error and
 * 429 paths. A fake whose request or response shapes drift from what the SDK sends and parses breaks this file.
 * HeyGen has no official Node SDK: its fake follows the shapes of HeyGen's official CLI (heygen-com/heygen-cli).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import RunwayML, { RateLimitError as RunwayRateLimitError, BadRequestError as RunwayBadRequestError } from "@runwayml/sdk";
import { ElevenLabsClient, ElevenLabsError } from "@elevenlabs/elevenlabs-js";
import { GoogleGenAI } from "@google/genai";
import { probe } from "@vp/media";
import { startFakeProviders, type FakeProviders } from "@vp/testkit";

let fakes: FakeProviders;
let dir: string;

beforeAll(async () => {
  fakes = await startFakeProviders({ pollsUntilDone: 1 });
  dir = await mkdtemp(join(tmpdir(), "vp-provider-sdks-"));
});
afterAll(async () => {
  await fakes?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});
beforeEach(() => fakes.reset());

async function bytesOf(stream: ReadableStream<Uint8Array>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) chunks.push(Buffer.from(chunk));
  return Buffer.concat(chunks);
}

describe("@runwayml/sdk against the Runway fake", () => {
  const runway = () => new RunwayML({ apiKey: fakes.runway.apiKey, baseURL: fakes.runway.url, maxRetries: 0 });

  it("image to video: create, then the SDK's own polling to SUCCEEDED with an output URL", async () => {
    const png = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
    const created = await runway().imageToVideo.create({ model: "gen4_turbo", promptImage: png, promptText: "spin", ratio: "1280:720", duration: 5 });
    expect(created.id).toMatch(/^[\w-]+$/);
    const task = await runway().tasks.retrieve(created.id).waitForTaskOutput({ timeout: 30_000 });
    expect(task.status).toBe("SUCCEEDED");
    expect(task.output?.[0]).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/files\//);
    expect(fakes.runway.jobs.get(created.id)!.request).toMatchObject({ model: "gen4_turbo", promptImage: png, ratio: "1280:720", duration: 5 });
  });

  it("a failed task, a cancel, a 400 and a 429 reach the SDK as it expects them", async () => {
    fakes.runway.failNextJob("The input image was rejected by moderation");
    const failing = await runway().textToVideo.create({ model: "gen4.5", promptText: "waves", ratio: "1280:720", duration: 5 });
    const failed = await runway()
      .tasks.retrieve(failing.id)
      .waitForTaskOutput({ timeout: 30_000 })
      .catch((e: unknown) => e as Error & { taskDetails?: { status?: string; failure?: string } });
    expect((failed as { taskDetails?: { status?: string; failure?: string } }).taskDetails).toMatchObject({
      status: "FAILED",
      failure: "The input image was rejected by moderation",
    });

    fakes.runway.hold();
    const running = await runway().textToVideo.create({ model: "gen4.5", promptText: "waves", ratio: "1280:720", duration: 5 });
    await runway().tasks.delete(running.id);
    expect((await runway().tasks.retrieve(running.id)).status).toBe("CANCELLED");
    fakes.runway.release();

    fakes.runway.fail("create", { kind: "reject", message: "promptText: too long" });
    await expect(runway().textToVideo.create({ model: "gen4.5", promptText: "x", ratio: "1280:720", duration: 5 })).rejects.toBeInstanceOf(
      RunwayBadRequestError,
    );
    fakes.runway.fail("create", { kind: "429", retryAfterSeconds: 7 });
    const limited = await runway()
      .textToVideo.create({ model: "gen4.5", promptText: "x", ratio: "1280:720", duration: 5 })
      .catch((e: unknown) => e);
    expect(limited).toBeInstanceOf(RunwayRateLimitError);
    expect((limited as RunwayRateLimitError).headers?.get("retry-after")).toBe("7");
  });

  it("a duration the model does not render is a 400 with Runway's validation issues, and creates nothing", async () => {
    const png = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==";
    const refused = (create: Promise<unknown>) => create.then(() => undefined).catch((e: unknown) => e as RunwayBadRequestError);
    const tooLong = await refused(runway().textToVideo.create({ model: "gen4.5", promptText: "waves", ratio: "1280:720", duration: 12 }));
    expect(tooLong).toBeInstanceOf(RunwayBadRequestError);
    expect(tooLong!.error).toEqual({
      error: "Validation of body failed",
      issues: [{ origin: "number", code: "too_big", maximum: 10, inclusive: true, path: ["duration"], message: "Too big: expected number to be <=10" }],
      docUrl: "https://docs.dev.runwayml.com/api",
    });
    const tooShort = await refused(runway().imageToVideo.create({ model: "gen4_turbo", promptImage: png, ratio: "1280:720", duration: 1 }));
    expect((tooShort!.error as { issues: unknown[] }).issues).toMatchObject([{ code: "too_small", path: ["duration"] }]);
    const fraction = await refused(runway().imageToVideo.create({ model: "gen4_turbo", promptImage: png, ratio: "1280:720", duration: 2.5 }));
    expect((fraction!.error as { issues: unknown[] }).issues).toMatchObject([{ code: "invalid_type", expected: "int", path: ["duration"] }]);
    // @ts-expect-error the SDK's own types refuse it too: veo3.1 takes 4, 6 or 8
    const veo = await refused(runway().textToVideo.create({ model: "veo3.1", promptText: "waves", ratio: "1280:720", duration: 5 }));
    expect((veo!.error as { issues: unknown[] }).issues).toMatchObject([{ code: "invalid_value", values: [4, 6, 8], path: ["duration"] }]);
    expect(fakes.runway.creates).toBe(0);

    // Every duration the SDK's types allow for gen4.5 (an integer from 2 to 10) is taken.
    for (const duration of [2, 10]) await runway().textToVideo.create({ model: "gen4.5", promptText: "waves", ratio: "1280:720", duration });
    expect(fakes.runway.creates).toBe(2);
  });
});

describe("@elevenlabs/elevenlabs-js against the ElevenLabs fake", () => {
  const elevenlabs = () => new ElevenLabsClient({ apiKey: fakes.elevenlabs.apiKey, baseUrl: fakes.elevenlabs.url, maxRetries: 0 });

  it("text to speech returns MP3 bytes; the history lists the item (voice, model, text, state) and serves its audio", async () => {
    const voiceId = "JBFqnCBsd6RMkjVDRZzb";
    const audio = await bytesOf(
      await elevenlabs().textToSpeech.convert(voiceId, {
        text: "Loops repeat work.",
        modelId: "eleven_multilingual_v2",
        outputFormat: "mp3_44100_128",
        voiceSettings: { stability: 0.5 },
      }),
    );
    expect(audio.subarray(0, 3).toString("latin1") === "ID3" || (audio[0] === 0xff && (audio[1]! & 0xe0) === 0xe0)).toBe(true);
    expect(fakes.elevenlabs.jobs.size).toBe(1);
    expect([...fakes.elevenlabs.jobs.values()][0]!.request).toEqual({
      text: "Loops repeat work.",
      model_id: "eleven_multilingual_v2",
      voice_settings: { stability: 0.5 },
    });

    const history = await elevenlabs().history.list({ voiceId, pageSize: 10 });
    expect(history.hasMore).toBe(false);
    expect(history.history).toHaveLength(1);
    expect(history.history[0]).toMatchObject({ voiceId, modelId: "eleven_multilingual_v2", text: "Loops repeat work.", state: "created", source: "TTS" });
    const again = await bytesOf(await elevenlabs().history.getAudio(history.history[0]!.historyItemId));
    expect(again.equals(audio)).toBe(true);
  });

  it("text to speech with timestamps: base64 MP3 and a character alignment as long as the text, ending where the audio ends", async () => {
    const voiceId = "JBFqnCBsd6RMkjVDRZzb";
    const text = "Loops repeat work. They stop when told.";
    const { data, rawResponse } = await elevenlabs()
      .textToSpeech.convertWithTimestamps(voiceId, { text, modelId: "eleven_multilingual_v2", outputFormat: "mp3_44100_128" })
      .withRawResponse();
    const audio = Buffer.from(data.audioBase64, "base64");
    expect(audio.subarray(0, 3).toString("latin1") === "ID3" || (audio[0] === 0xff && (audio[1]! & 0xe0) === 0xe0)).toBe(true);
    for (const alignment of [data.alignment, data.normalizedAlignment]) {
      expect(alignment?.characters.join("")).toBe(text);
      expect(alignment?.characterStartTimesSeconds).toHaveLength(text.length);
      expect(alignment?.characterEndTimesSeconds).toHaveLength(text.length);
    }
    const { characterStartTimesSeconds: starts, characterEndTimesSeconds: ends } = data.alignment!;
    expect(starts[0]).toBe(0);
    expect(starts.every((t, i) => t <= ends[i]! && (i === 0 || t >= starts[i - 1]!))).toBe(true);
    const file = join(dir, "with-timestamps.mp3");
    await writeFile(file, audio);
    expect(ends.at(-1)).toBeCloseTo((await probe(file)).durationSeconds, 3);

    const job = [...fakes.elevenlabs.jobs.values()][0]!;
    expect(job.request).toEqual({ text, model_id: "eleven_multilingual_v2" });
    expect(job.extra).toMatchObject({ voiceId, outputFormat: "mp3_44100_128" });
    expect(rawResponse.headers.get("request-id")).toBe(job.id);
    expect(rawResponse.headers.get("history-item-id")).toBe(fakes.elevenlabs.history[0]!.item.history_item_id);
    expect(rawResponse.headers.get("character-cost")).toBe(String(text.length));
    const history = await elevenlabs().history.list({ voiceId });
    expect(history.history[0]).toMatchObject({ text, state: "created", requestId: job.id });
  });

  it("errors carry the fake's detail (code, message) and status to the SDK, a 429 included", async () => {
    fakes.elevenlabs.fail("create", { kind: "reject", status: 404, message: "A voice with the voice_id nope was not found.", code: "voice_not_found" });
    const missing = await elevenlabs()
      .textToSpeech.convert("nope", { text: "x" })
      .catch((e: unknown) => e);
    expect(missing).toBeInstanceOf(ElevenLabsError);
    expect(missing).toMatchObject({ statusCode: 404, body: { detail: { code: "voice_not_found", message: "A voice with the voice_id nope was not found." } } });
    fakes.elevenlabs.fail("create", { kind: "429", retryAfterSeconds: 2 });
    const limited = await elevenlabs()
      .textToSpeech.convert("JBFqnCBsd6RMkjVDRZzb", { text: "x" })
      .catch((e: unknown) => e);
    expect(limited).toMatchObject({ statusCode: 429, body: { detail: { code: "rate_limit_exceeded" } } });
  });
});

describe("@google/genai against the Veo fake", () => {
  const genai = () => new GoogleGenAI({ apiKey: fakes.veo.apiKey, httpOptions: { baseUrl: fakes.veo.url, retryOptions: { attempts: 1 } } });

  it("generateVideos starts a long-running operation; getVideosOperation polls it to done with a generated video", async () => {
    let operation = await genai().models.generateVideos({
      model: "veo-3.0-generate-001",
      prompt: "a paper boat on a pond",
      config: { aspectRatio: "16:9", negativePrompt: "text", durationSeconds: 8 },
    });
    expect(operation.name).toMatch(/^models\/veo-3\.0-generate-001\/operations\/[a-f0-9]+$/);
    expect(operation.done).toBeFalsy();
    for (let i = 0; i < 10 && !operation.done; i++) operation = await genai().operations.getVideosOperation({ operation });
    expect(operation.done).toBe(true);
    const video = operation.response?.generatedVideos?.[0]?.video;
    expect(video?.uri).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/v1beta\/files\/[a-f0-9]+:download\?alt=media$/);
    const sent = [...fakes.veo.jobs.values()][0]!.request as { instances: Array<{ prompt: string }>; parameters: Record<string, unknown> };
    expect(sent.instances[0]!.prompt).toBe("a paper boat on a pond");
    expect(sent.parameters).toMatchObject({ aspectRatio: "16:9", negativePrompt: "text", durationSeconds: 8 });
  });

  it("a refusal and a 429 with Google's error body reach the SDK with their status and message", async () => {
    fakes.veo.fail("create", { kind: "reject", message: "The prompt was blocked by the safety policy.", code: "INVALID_ARGUMENT" });
    const refused = await genai()
      .models.generateVideos({ model: "veo-3.0-generate-001", prompt: "x" })
      .catch((e: unknown) => e as Error & { status?: number });
    expect(refused).toMatchObject({ status: 400 });
    expect((refused as Error).message).toContain("The prompt was blocked by the safety policy.");
    fakes.veo.fail("create", {
      kind: "429",
      body: {
        error: {
          code: 429,
          message: "Resource has been exhausted",
          status: "RESOURCE_EXHAUSTED",
          details: [{ "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "3s" }],
        },
      },
    });
    const limited = await genai()
      .models.generateVideos({ model: "veo-3.0-generate-001", prompt: "x" })
      .catch((e: unknown) => e as Error & { status?: number });
    expect(limited).toMatchObject({ status: 429 });
    expect((limited as Error).message).toContain("RESOURCE_EXHAUSTED");
  });
});
