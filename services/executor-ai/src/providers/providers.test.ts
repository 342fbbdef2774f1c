/**
 * The four provider clients against the fake providers of @vp/testkit: real HTTP servers on 127.0.0.1 that speak
 * each provider's documented endpoints and return real media.
 */
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { probe } from "@vp/media";
import { startFakeProviders, type FakeProviders } from "@vp/testkit";
import { RetryAfterError } from "@vp/bus";
import { ProviderRejectedError, ProviderTimeoutError, ProviderUnavailableError, UnsafeUrlError, WorkInputError, createdNothing } from "../errors";
import { checkProviderUrl, downloadToFile, isBlockedAddress } from "./download";
import { createElevenlabsClient, describeElevenlabsError, elevenlabsMaxCharacters } from "./elevenlabs";
import { createHeygenClient, heygenFrame } from "./heygen";
import { parseRetryAfter } from "./http";
import { createRunwayClient } from "./runway";
import { createVeoClient, describeGoogleRateLimit } from "./veo";

let fakes: FakeProviders;
let dir: string;
const common = { timeoutMs: 400, retries: 2, retryBaseMs: 20, defaultRetryAfterMs: 30_000 };

beforeAll(async () => {
  fakes = await startFakeProviders({ pollsUntilDone: 1 });
  dir = await mkdtemp(join(tmpdir(), "vp-providers-"));
});
afterAll(async () => {
  await fakes?.close();
  await rm(dir, { recursive: true, force: true });
});
beforeEach(() => fakes.reset());

const heygen = () => createHeygenClient({ ...common, baseUrl: fakes.heygen.url, apiKey: fakes.heygen.apiKey });
const policy = () => ({ trustedOrigins: [fakes.heygen.url, fakes.elevenlabs.url, fakes.veo.url, fakes.runway.url] });
const video = {
  avatarId: "Daisy-inskirt-20220818",
  voiceId: "2d5b0e6cf36f460aa7fc47e3eee4ba54",
  script: "Hello there.",
  width: 1280,
  height: 720,
  clientRef: "vp-job-1",
  title: "Intro [vp-job-1]",
};

async function pollUntilDone<T extends { state: string }>(poll: () => Promise<T>): Promise<T> {
  for (let i = 0; i < 10; i++) {
    const r = await poll();
    if (r.state !== "running") return r;
  }
  throw new Error("still running");
}

describe("HeyGen client", () => {
  it("creates a video, polls it to completed, downloads a playable MP4 without sending the key to the file URL", async () => {
    const client = heygen();
    const { id } = await client.createVideo(video);
    expect(fakes.heygen.creates).toBe(1);
    const job = fakes.heygen.jobs.get(id)!;
    expect(job.request).toEqual({
      type: "avatar",
      avatar_id: video.avatarId,
      script: "Hello there.",
      voice_id: video.voiceId,
      resolution: "720p",
      aspect_ratio: "16:9",
      title: video.title,
      callback_id: "vp-job-1",
    });
    expect(job.extra.idempotencyKey).toBe("vp-job-1");
    expect(await client.poll(id)).toEqual({ state: "running" });
    const done = await client.poll(id);
    expect(done).toMatchObject({ state: "succeeded", durationSeconds: 1 });
    const dest = join(dir, "heygen.mp4");
    await downloadToFile({ provider: "heygen", url: (done as { url: string }).url, dest, policy: policy(), idleTimeoutMs: 2000, maxBytes: 50e6, secrets: [] });
    const p = await probe(dest);
    expect(p.video?.codec).toBe("h264");
    expect(p.audio?.codec).toBe("aac");
    expect(fakes.heygen.keyLeaks).toBe(0);
    expect(fakes.heygen.inFlight).toBe(0);
  });

  it("sends the job's reference as Idempotency-Key: a repeated create replays the first video, and one still being processed is asked again later", async () => {
    const client = heygen();
    const first = await client.createVideo(video);
    expect(await client.createVideo(video)).toEqual(first);
    expect(fakes.heygen.creates).toBe(1);
    fakes.heygen.markInFlight("vp-job-2");
    const error = await client.createVideo({ ...video, clientRef: "vp-job-2" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryAfterError);
    expect((error as RetryAfterError).delayMs).toBe(2000);
    expect((error as Error).message).toMatch(
      /^HeyGen is still processing an earlier create request of this job \(HeyGen rejected the request \(409 conflict\): .+\); asking again$/,
    );
    expect(fakes.heygen.creates).toBe(1);
  });

  it("maps the node's frame to v3's resolutions and aspect ratios", () => {
    expect(heygenFrame(1280, 720)).toEqual({ resolution: "720p", aspectRatio: "16:9" });
    expect(heygenFrame(1920, 1080)).toEqual({ resolution: "1080p", aspectRatio: "16:9" });
    expect(heygenFrame(1080, 1920)).toEqual({ resolution: "1080p", aspectRatio: "9:16" });
    expect(heygenFrame(3840, 2160)).toEqual({ resolution: "4k", aspectRatio: "16:9" });
    expect(heygenFrame(1000, 1000)).toEqual({ resolution: "1080p", aspectRatio: "1:1" });
    expect(heygenFrame(1080, 1350)).toEqual({ resolution: "1080p", aspectRatio: "4:5" });
    expect(heygenFrame(640, 360)).toEqual({ resolution: "720p", aspectRatio: "16:9" });
  });

  it("refuses to poll an id HeyGen would not issue (it becomes a URL path)", async () => {
    await expect(heygen().poll("../v3/users")).rejects.toThrow('HeyGen video id "../v3/users" is not an id HeyGen issues');
  });

  it("finds a video by our reference after a lost create reply", async () => {
    const client = heygen();
    const { id } = await client.createVideo(video);
    expect(await client.findByClientRef("vp-job-1")).toBe(id);
    expect(await client.findByClientRef("vp-job-2")).toBeUndefined();
  });

  it("maps 429 + Retry-After to RetryAfterError (nothing created)", async () => {
    fakes.heygen.fail("create", { kind: "429", retryAfterSeconds: 3 });
    const error = await heygen()
      .createVideo(video)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RetryAfterError);
    expect((error as RetryAfterError).delayMs).toBe(3000);
    expect((error as Error).message).toMatch(/^HeyGen rate limit on create video: Too many requests \(retry after 3 s\)$/);
    expect(createdNothing(error)).toBe(true);
    expect(fakes.heygen.creates).toBe(0);
  });

  it("retries a 500 in-process and succeeds; gives up after its retries with a retryable error", async () => {
    fakes.heygen.fail("create", { kind: "500" });
    await heygen().createVideo(video);
    expect(fakes.heygen.calls.map((c) => c.status)).toEqual([500, 200]);
    expect(fakes.heygen.creates).toBe(1);

    fakes.heygen.reset();
    fakes.heygen.fail("status", { kind: "500" }, { kind: "500" }, { kind: "500" });
    const error = await heygen()
      .poll("nope")
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderUnavailableError);
    expect((error as Error).message).toBe("HeyGen unavailable: video status answered 500: Internal server error");
    expect(fakes.heygen.calls).toHaveLength(3);
  });

  it("fails a 400 at once with HeyGen's own message, and redacts the key if an answer echoes it", async () => {
    fakes.heygen.fail("create", { kind: "reject", message: "Avatar Daisy-inskirt-20220818 not found", code: "avatar_not_found" });
    const error = await heygen()
      .createVideo(video)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderRejectedError);
    expect((error as Error).message).toBe("HeyGen rejected the request (400 avatar_not_found): Avatar Daisy-inskirt-20220818 not found");
    expect(createdNothing(error)).toBe(true);

    fakes.heygen.fail("create", { kind: "reject", status: 403, message: `key ${fakes.heygen.apiKey} has no access` });
    const leaked = await heygen()
      .createVideo(video)
      .catch((e: unknown) => e);
    expect((leaked as Error).message).toBe("HeyGen rejected the request (403 invalid_parameter): key [redacted] has no access");

    const wrongKey = createHeygenClient({ ...common, baseUrl: fakes.heygen.url, apiKey: "wrong-key-123" });
    expect(await wrongKey.createVideo(video).catch((e: Error) => e.message)).toBe("HeyGen rejected the request (401 unauthorized): Invalid API key");
  });

  it("a hang fails by timeout: retryable, and for a create the outcome is unknown", async () => {
    fakes.heygen.fail("create", { kind: "hang" });
    const started = Date.now();
    const error = await heygen()
      .createVideo(video)
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ProviderTimeoutError);
    expect(Date.now() - started).toBeGreaterThanOrEqual(390);
    expect(createdNothing(error)).toBe(false);
    // The hung create did create the video: exactly what a lost reply looks like.
    expect(fakes.heygen.creates).toBe(1);
    expect(fakes.heygen.calls.filter((c) => c.endpoint === "create")).toHaveLength(1);
  });

  it("reports a job that fails after polling with HeyGen's reason", async () => {
    fakes.heygen.failNextJob("Video is too long (> 3600.0s)");
    const client = heygen();
    const { id } = await client.createVideo(video);
    expect(await pollUntilDone(() => client.poll(id))).toEqual({ state: "failed", reason: "render_failed: Video is too long (> 3600.0s)" });
  });
});

describe("ElevenLabs client", () => {
  const client = () => createElevenlabsClient({ ...common, timeoutMs: 5000, baseUrl: fakes.elevenlabs.url, apiKey: fakes.elevenlabs.apiKey });

  it("posts text, model and voice settings to the with-timestamps endpoint, writes the MP3 and returns its alignment", async () => {
    const dest = join(dir, "speech.mp3");
    const speech = await client().textToSpeech(
      { voiceId: "JBFqnCBsd6RMkjVDRZzb", modelId: "eleven_multilingual_v2", text: "Loops repeat work.", stability: 0.4 },
      dest,
    );
    const job = [...fakes.elevenlabs.jobs.values()][0]!;
    expect(fakes.elevenlabs.calls.map((c) => c.path)).toEqual(["/v1/text-to-speech/JBFqnCBsd6RMkjVDRZzb/with-timestamps"]);
    expect(speech).toMatchObject({
      requestId: job.id,
      historyItemId: fakes.elevenlabs.history[0]!.item.history_item_id,
      characterCost: "Loops repeat work.".length,
    });
    expect(job.request).toEqual({ text: "Loops repeat work.", model_id: "eleven_multilingual_v2", voice_settings: { stability: 0.4 } });
    expect(job.extra).toMatchObject({ voiceId: "JBFqnCBsd6RMkjVDRZzb", outputFormat: "mp3_44100_128" });
    expect(speech.bytes).toBe((await readFile(dest)).length);
    const p = await probe(dest);
    expect(p.audio?.codec).toBe("mp3");
    expect(p.durationSeconds).toBeGreaterThan(0.5);
    expect(speech.alignment?.characters.join("")).toBe("Loops repeat work.");
    expect(speech.alignment?.character_end_times_seconds.at(-1)).toBeCloseTo(p.durationSeconds, 3);
  });

  it("fails with ElevenLabs' own message", async () => {
    fakes.elevenlabs.fail("create", { kind: "reject", status: 404, message: "A voice with the voice_id nope was not found.", code: "voice_not_found" });
    const error = await client()
      .textToSpeech({ voiceId: "nope", modelId: "m", text: "x" }, join(dir, "x.mp3"))
      .then(
        () => undefined,
        (e: Error) => e,
      );
    expect(error?.message).toBe("ElevenLabs rejected the request (404 voice_not_found): A voice with the voice_id nope was not found.");
  });

  it("reads ElevenLabs' error code from detail.code, or from the legacy detail.status; knows each model's text limit", () => {
    expect(describeElevenlabsError({ detail: { code: "quota_exceeded", message: "You have 12 credits remaining" } })).toEqual({
      code: "quota_exceeded",
      message: "You have 12 credits remaining",
    });
    expect(describeElevenlabsError({ detail: { status: "voice_not_found", message: "A voice with the voice_id nope was not found." } })).toMatchObject({
      code: "voice_not_found",
    });
    expect(elevenlabsMaxCharacters("eleven_v3")).toBe(5_000);
    expect(elevenlabsMaxCharacters("eleven_flash_v2_5")).toBe(40_000);
    expect(elevenlabsMaxCharacters("eleven_multilingual_v2")).toBe(10_000);
    expect(elevenlabsMaxCharacters("a_future_model")).toBe(5_000);
  });

  it("finds a lost request's audio in the history by voice, model and text, across pages, and downloads it", async () => {
    const c = client();
    const voice = { voiceId: "JBFqnCBsd6RMkjVDRZzb", modelId: "eleven_multilingual_v2" };
    const since = Math.floor(Date.now() / 1000) - 1;
    await c.textToSpeech({ ...voice, text: "The lost one." }, join(dir, "lost.mp3"));
    // 120 newer items push the wanted one to the second page of 100.
    for (let i = 0; i < 120; i++)
      fakes.elevenlabs.history.push({ item: { ...fakes.elevenlabs.history[0]!.item, history_item_id: `other${i}`, text: `Other ${i}.` } });
    const item = await c.findSpeech({ ...voice, text: "The lost one.", sinceUnix: since });
    expect(item).toMatchObject({ text: "The lost one.", state: "created", request_id: [...fakes.elevenlabs.jobs.keys()][0] });
    expect(fakes.elevenlabs.calls.filter((x) => x.endpoint === "lookup")).toHaveLength(2);
    expect(await c.findSpeech({ ...voice, modelId: "eleven_v3", text: "The lost one.", sinceUnix: since })).toBeUndefined();
    expect(await c.findSpeech({ ...voice, text: "Never said.", sinceUnix: since })).toBeUndefined();
    expect(await c.findSpeech({ ...voice, text: "The lost one.", sinceUnix: since + 3600 })).toBeUndefined();
    const dest = join(dir, "recovered.mp3");
    await c.historyAudio(item!.history_item_id, dest);
    expect((await probe(dest)).audio?.codec).toBe("mp3");
  });
});

describe("Veo client", () => {
  const client = () => createVeoClient({ ...common, baseUrl: fakes.veo.url, apiKey: fakes.veo.apiKey });

  it("starts a long-running operation, polls it, and downloads through the redirect sending the key only to the API", async () => {
    const c = client();
    const { id } = await c.generate({
      model: "veo-3.0-generate-001",
      prompt: "a paper boat",
      aspectRatio: "16:9",
      durationSeconds: 8,
      image: { base64: "aGk=", mimeType: "image/png" },
    });
    expect(id).toMatch(/^models\/veo-3.0-generate-001\/operations\/[a-f0-9]+$/);
    expect([...fakes.veo.jobs.values()][0]!.request).toEqual({
      instances: [{ prompt: "a paper boat", image: { bytesBase64Encoded: "aGk=", mimeType: "image/png" } }],
      parameters: { aspectRatio: "16:9", durationSeconds: 8 },
    });
    const done = await pollUntilDone(() => c.poll(id));
    expect(done.state).toBe("succeeded");
    const dest = join(dir, "veo.mp4");
    await downloadToFile({
      provider: "veo3",
      url: (done as { url: string }).url,
      dest,
      policy: policy(),
      headersFor: (u): Record<string, string> =>
        u.origin === c.http.origin && u.pathname.startsWith("/v1beta/") ? { "x-goog-api-key": fakes.veo.apiKey } : {},
      idleTimeoutMs: 2000,
      maxBytes: 50e6,
      secrets: [],
    });
    expect((await probe(dest)).video?.codec).toBe("h264");
    expect(fakes.veo.keyLeaks).toBe(0);
  });

  it("reports a filtered result and an operation error as failures with the reason", async () => {
    const c = client();
    fakes.veo.filterNextJob("The prompt could not be submitted (celebrity likeness).");
    const a = await c.generate({ model: "veo-3.0-generate-001", prompt: "x", aspectRatio: "16:9", durationSeconds: 4 });
    expect(await pollUntilDone(() => c.poll(a.id))).toEqual({
      state: "failed",
      reason: "filtered by the safety policy: The prompt could not be submitted (celebrity likeness).",
    });
    fakes.veo.failNextJob("Internal error while generating");
    const b = await c.generate({ model: "veo-3.0-generate-001", prompt: "x", aspectRatio: "16:9", durationSeconds: 4 });
    expect(await pollUntilDone(() => c.poll(b.id))).toEqual({ state: "failed", reason: "Internal error while generating" });
  });

  it("refuses operation names that are not the API's shape", async () => {
    await expect(client().poll("../../v1/files/x")).rejects.toThrow("not a Veo operation name");
  });
});

describe("Runway client", () => {
  const client = () => createRunwayClient({ ...common, baseUrl: fakes.runway.url, apiKey: fakes.runway.apiKey });

  it("image to video with a data URI, text to video, polling to SUCCEEDED, and cancel", async () => {
    const c = client();
    const img = await c.generate({ model: "gen4_turbo", promptText: "waves", promptImage: "data:image/png;base64,aGk=", ratio: "1280:720", duration: 5 });
    const txt = await c.generate({ model: "gen4.5", promptText: "waves", ratio: "720:1280", duration: 4 });
    expect(fakes.runway.jobs.get(img.id)!.extra.kind).toBe("image");
    expect(fakes.runway.jobs.get(txt.id)!.request).toEqual({ model: "gen4.5", promptText: "waves", ratio: "720:1280", duration: 4 });
    expect(await c.poll(img.id)).toEqual({ state: "running", progress: undefined });
    expect((await c.poll(img.id)).state).toBe("succeeded");
    await c.cancel(txt.id);
    expect(fakes.runway.cancels).toBe(1);
    expect(await c.poll(txt.id)).toEqual({ state: "failed", reason: "the task was cancelled" });
  });

  it("a THROTTLED task (queued: the account's concurrency is full) is still running, not a failure", async () => {
    const c = client();
    const task = await c.generate({ model: "gen4.5", promptText: "waves", ratio: "1280:720", duration: 5 });
    fakes.runway.throttled = true;
    expect((await c.poll(task.id)).state).toBe("running");
    expect((await c.poll(task.id)).state).toBe("running");
    fakes.runway.throttled = false;
    expect((await pollUntilDone(() => c.poll(task.id))).state).toBe("succeeded");
  });

  it("never sends a duration the model does not render: refused before any request, with the durations it does", async () => {
    const c = client();
    await expect(c.generate({ model: "gen4.5", promptText: "waves", ratio: "1280:720", duration: 12 })).rejects.toThrow(
      new WorkInputError("Runway gen4.5 renders 2 to 10 whole seconds, not 12"),
    );
    await expect(
      c.generate({ model: "gen4_turbo", promptText: "waves", promptImage: "data:image/png;base64,aGk=", ratio: "1280:720", duration: 1 }),
    ).rejects.toThrow("Runway gen4_turbo renders 2 to 10 whole seconds, not 1");
    expect(fakes.runway.calls).toEqual([]);
    // A model outside the product's table goes to Runway, whose 400 names the durations (here from the fake).
    await expect(c.generate({ model: "veo3.1", promptText: "waves", ratio: "1280:720", duration: 5 })).rejects.toThrow(
      new ProviderRejectedError("runway", 400, "Validation of body failed (duration: Invalid option: expected one of 4|6|8)"),
    );
    expect(fakes.runway.creates).toBe(0);
  });

  it("reports a failed task with Runway's failure and code", async () => {
    fakes.runway.failNextJob("The output did not pass moderation");
    const c = client();
    const { id } = await c.generate({ model: "gen4.5", promptText: "x", ratio: "1280:720", duration: 5 });
    expect(await pollUntilDone(() => c.poll(id))).toEqual({ state: "failed", reason: "The output did not pass moderation (INTERNAL.BAD_OUTPUT)" });
  });
});

describe("result URLs (no SSRF)", () => {
  it("accepts public https and the configured origins; refuses http, private, loopback and link-local addresses", () => {
    const p = { trustedOrigins: ["http://127.0.0.1:9999"] };
    expect(checkProviderUrl("https://files.heygen.ai/v/1.mp4?x=1", p, "url").host).toBe("files.heygen.ai");
    expect(checkProviderUrl("http://127.0.0.1:9999/files/1.mp4", p, "url").port).toBe("9999");
    for (const bad of [
      "http://files.heygen.ai/v.mp4",
      "https://127.0.0.1/v.mp4",
      "https://127.0.0.1:9998/v.mp4",
      "https://169.254.169.254/latest/meta-data",
      "https://10.1.2.3/x",
      "https://[::1]/x",
      "https://[::ffff:127.0.0.1]/x",
      "https://localhost/x",
      "https://user:pw@example.com/x",
      "file:///etc/passwd",
      "not a url",
    ]) {
      expect(() => checkProviderUrl(bad, p, "url"), bad).toThrow(UnsafeUrlError);
    }
    expect(isBlockedAddress("8.8.8.8")).toBe(false);
    expect(isBlockedAddress("2001:4860:4860::8888")).toBe(false);
    expect(isBlockedAddress("fe80::1")).toBe(true);
  });

  it("refuses a redirect from a trusted origin to an untrusted local one, before connecting to it", async () => {
    // The Veo file URI redirects to a signed URL; here the signed URL points at another local server.
    fakes.veo.redirectOrigin = fakes.heygen.url;
    const c = createVeoClient({ ...common, baseUrl: fakes.veo.url, apiKey: fakes.veo.apiKey });
    const { id } = await c.generate({ model: "veo-3.0-generate-001", prompt: "x", aspectRatio: "16:9", durationSeconds: 4 });
    const done = (await pollUntilDone(() => c.poll(id))) as { url: string };
    const error = await downloadToFile({
      provider: "veo3",
      url: done.url,
      dest: join(dir, "never.mp4"),
      policy: { trustedOrigins: [fakes.veo.url] },
      headersFor: () => ({ "x-goog-api-key": fakes.veo.apiKey }),
      idleTimeoutMs: 1000,
      maxBytes: 1e6,
      secrets: [],
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsafeUrlError);
    expect((error as Error).message).toBe("result URL (redirect) must be https, got http");
    expect(fakes.veo.calls.map((call) => call.endpoint)).toEqual(["create", "status", "status", "download"]);
    expect(fakes.heygen.calls).toHaveLength(0);
  });

  it("stops a download larger than the limit", async () => {
    const c = createRunwayClient({ ...common, baseUrl: fakes.runway.url, apiKey: fakes.runway.apiKey });
    const { id } = await c.generate({ model: "gen4.5", promptText: "x", ratio: "1280:720", duration: 5 });
    const done = (await pollUntilDone(() => c.poll(id))) as { url: string };
    await expect(
      downloadToFile({ provider: "runway", url: done.url, dest: join(dir, "big.mp4"), policy: policy(), idleTimeoutMs: 1000, maxBytes: 1000, secrets: [] }),
    ).rejects.toThrow("result URL: result is larger than 1000 bytes");
  });
});

describe("Google 429 bodies", () => {
  it("read RetryInfo's delay, and a per-day QuotaFailure as exhausted", () => {
    const retry = { "@type": "type.googleapis.com/google.rpc.RetryInfo", retryDelay: "37.5s" };
    const perMinute = { "@type": "type.googleapis.com/google.rpc.QuotaFailure", violations: [{ quotaId: "GenerateRequestsPerMinutePerProjectPerModel" }] };
    const perDay = { "@type": "type.googleapis.com/google.rpc.QuotaFailure", violations: [{ quotaId: "GenerateRequestsPerDayPerProjectPerModel" }] };
    expect(describeGoogleRateLimit({ error: { code: 429, details: [retry] } })).toEqual({ delayMs: 37_500 });
    expect(describeGoogleRateLimit({ error: { code: 429, details: [perMinute, retry] } })).toEqual({ delayMs: 37_500 });
    expect(describeGoogleRateLimit({ error: { code: 429, details: [perDay, retry] } }).exhausted).toBe(
      "the per-day quota GenerateRequestsPerDayPerProjectPerModel is spent; it resets at midnight Pacific time",
    );
    expect(describeGoogleRateLimit({ error: { code: 429, message: "busy" } })).toEqual({});
    expect(describeGoogleRateLimit("not json")).toEqual({});
  });
});

describe("Retry-After", () => {
  it("reads seconds and HTTP dates", () => {
    expect(parseRetryAfter("3")).toBe(3000);
    expect(parseRetryAfter("0.5")).toBe(500);
    expect(parseRetryAfter(new Date(Date.UTC(2030, 0, 1, 0, 0, 10)).toUTCString(), Date.UTC(2030, 0, 1))).toBe(10_000);
    expect(parseRetryAfter(null)).toBeUndefined();
    expect(parseRetryAfter("soon")).toBeUndefined();
  });
});
