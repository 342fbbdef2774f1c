import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { type NodeOutput, type SpeechTiming, splitSentences, spreadByWords } from "@vp/contracts";
import { jobOutputKey, type WorkContext, type WorkFunction, type WorkResult } from "@vp/runtime";
import type { Logger } from "@vp/telemetry";
import { createdNothing, RetryAfterError, WorkInputError, type PaidProvider } from "../errors";
import { renderLocalAnimation, renderLocalTalkingHead, renderLocalVoiceover } from "../local/render";
import { AI_DEFAULTS, estimateAiCost, heygenFrame, runwayDurationFor, veoDurationFor } from "@vp/contracts";
import type { Pricing } from "../pricing";
import { downloadToFile, type UrlPolicy } from "../providers/download";
import {
  ELEVENLABS_DEFAULT_VOICE,
  elevenlabsMaxCharacters,
  sentencesFromAlignment,
  type ElevenlabsAlignment,
  type ElevenlabsClient,
} from "../providers/elevenlabs";
import type { HeygenClient } from "../providers/heygen";
import type { RunwayClient } from "../providers/runway";
import type { VeoClient } from "../providers/veo";
import {
  parseConfig,
  progressRange,
  providerFields,
  requireRecorder,
  resolveImage,
  resolvePrompt,
  resolveScript,
  selectProvider,
  storeResult,
  type ProviderName,
} from "./common";
import { clientRefOf, runPaidJob } from "./paid-job";

/** How long to wait before looking again for audio ElevenLabs is still generating for an earlier attempt. */
const LOST_SPEECH_RETRY_MS = 2000;
const CLOCK_MARGIN_S = 300;

export interface AiClients {
  heygen?: HeygenClient;
  elevenlabs?: ElevenlabsClient;
  veo3?: VeoClient;
  runway?: RunwayClient;
}

export interface AiWorkDeps {
  clients: AiClients;
  /** API keys, sent only with downloads from the provider's own origin, and redacted from messages. */
  secrets: Partial<Record<PaidProvider, string>>;
  pricing: Pricing;
  urlPolicy: UrlPolicy;
  pollIntervalMs: number;
  maxWaitMs: number;
  httpTimeoutMs: number;
  maxDownloadBytes: number;
  localFontFile?: string;
  localTimeoutMs: number;
  /** How long a job may keep being told to wait (429s, work still in flight at the provider) before its node fails. */
  rateLimitMaxWaitMs: number;
  logger?: Logger;
}

/** HeyGen's limit for one avatar's text input. */
const HEYGEN_MAX_CHARACTERS = 5000;
/** Largest first frame sent inline (Veo bytesBase64Encoded, Runway data URI). */
const MAX_INLINE_IMAGE_BYTES = 5 * 1024 * 1024;
/** Runway's limit for an image sent inline: a data URI under 5 MB (docs.dev.runwayml.com "Inputs", read 2026-12-07). */
const RUNWAY_MAX_DATA_URI = 5_000_000;

const elapsedSeconds = (started: number) => (performance.now() - started) / 1000;

/** The work functions of executor-ai: talking-head, generate-voiceover, generate-animation. */
export function createAiWorks(deps: AiWorkDeps): Record<"talking-head" | "generate-voiceover" | "generate-animation", WorkFunction> {
  const configured = new Set(
    Object.entries(deps.clients)
      .filter(([, c]) => c)
      .map(([p]) => p as PaidProvider),
  );
  const secrets = Object.values(deps.secrets).filter((s): s is string => !!s);

  /** Downloads a finished provider result into the work directory (never handing its URL to anything else). */
  async function download(ctx: WorkContext, provider: PaidProvider, url: string, name: string, keyHeader?: Record<string, string>) {
    const dest = join(ctx.workDir, name);
    const origin = deps.clients[provider]?.http.origin;
    await downloadToFile({
      provider,
      url,
      dest,
      policy: deps.urlPolicy,
      // The key goes only to the provider's own API origin (Veo's download URI), never to a CDN or a redirect.
      headersFor: (u) => (keyHeader && u.origin === origin ? keyHeader : {}),
      idleTimeoutMs: deps.httpTimeoutMs,
      maxBytes: deps.maxDownloadBytes,
      secrets,
      signal: ctx.signal,
    });
    return dest;
  }

  async function recordLocal(ctx: WorkContext, estimatedCost: number) {
    await requireRecorder(ctx)({ provider: "local", phase: "local", estimatedCost });
  }

  const talkingHead: WorkFunction = async (ctx) => {
    const config = parseConfig(ctx.node, "talking-head");
    const provider = selectProvider("talking-head", config.provider, configured);
    const script = await resolveScript(ctx, config.script, provider === "heygen" ? HEYGEN_MAX_CHARACTERS : 10_000);
    const started = performance.now();

    if (provider === "local") {
      await recordLocal(ctx, estimateAiCost("talking-head", "local", { script, speed: config.speed }, deps.pricing));
      ctx.progress(5);
      const { path, timing } = await renderLocalTalkingHead({
        workDir: ctx.workDir,
        signal: ctx.signal,
        fontFile: deps.localFontFile,
        timeoutMs: deps.localTimeoutMs,
        title: ctx.node.title,
        text: script,
        voice: config.voiceId,
        speed: config.speed,
        pitch: config.pitch,
        width: config.width,
        height: config.height,
        onProgress: progressRange(ctx, 10, 90),
      });
      const { output } = await storeResult(ctx, path, { type: "video", ext: "mp4", contentType: "video/mp4", what: "the local talking head" });
      return { output: { ...output, ...providerFields("local"), timing }, cost: deps.pricing.local(elapsedSeconds(started)) };
    }

    const heygen = deps.clients.heygen!;
    if (!config.avatarId) throw new WorkInputError("talking-head with provider heygen needs config.avatarId (a HeyGen avatar id)");
    if (!config.voiceId) throw new WorkInputError("talking-head with provider heygen needs config.voiceId (a HeyGen voice id)");
    const width = config.width ?? 1280;
    const height = config.height ?? 720;
    const job = await runPaidJob(
      ctx,
      {
        provider: "heygen",
        estimatedCost: estimateAiCost("talking-head", "heygen", { script, speed: config.speed, width, height }, deps.pricing),
        create: (clientRef, signal) =>
          heygen.createVideo(
            {
              avatarId: config.avatarId!,
              voiceId: config.voiceId!,
              script,
              speed: config.speed,
              width,
              height,
              clientRef,
              title: `${ctx.node.title} [${clientRef}]`,
            },
            signal,
          ),
        poll: (id, signal) => heygen.poll(id, signal),
        findByClientRef: (ref, signal) => heygen.findByClientRef(ref, signal),
      },
      { pollIntervalMs: deps.pollIntervalMs, maxWaitMs: deps.maxWaitMs, onProgress: progressRange(ctx, 10, 80) },
    );
    ctx.progress(82);
    const file = await download(ctx, "heygen", job.url, "heygen.mp4");
    const { output, probe: p } = await storeResult(ctx, file, { type: "video", ext: "mp4", contentType: "video/mp4", what: "the HeyGen video" });
    return {
      output: { ...output, ...providerFields("heygen", { providerJobId: job.id, avatarId: config.avatarId, voiceId: config.voiceId }) },
      cost: deps.pricing.heygen(p.durationSeconds, heygenFrame(width, height).resolution),
    };
  };

  const voiceover: WorkFunction = async (ctx) => {
    const config = parseConfig(ctx.node, "generate-voiceover");
    const provider = selectProvider("generate-voiceover", config.provider, configured);
    const script = await resolveScript(
      ctx,
      config.script,
      provider === "elevenlabs" ? elevenlabsMaxCharacters(config.modelId ?? AI_DEFAULTS.elevenlabsModel) : 10_000,
    );
    const started = performance.now();

    if (provider === "local") {
      await recordLocal(ctx, estimateAiCost("generate-voiceover", "local", { script, speed: config.speed }, deps.pricing));
      ctx.progress(5);
      const { path, timing } = await renderLocalVoiceover({
        workDir: ctx.workDir,
        signal: ctx.signal,
        timeoutMs: deps.localTimeoutMs,
        text: script,
        voice: config.voiceId,
        speed: config.speed,
        pitch: config.pitch,
      });
      ctx.progress(80);
      const { output } = await storeResult(ctx, path, { type: "audio", ext: "m4a", contentType: "audio/mp4", what: "the local voiceover" });
      return {
        output: { ...output, ...providerFields("local", { voiceId: config.voiceId ?? "en-us" }), timing },
        cost: deps.pricing.local(elapsedSeconds(started)),
      };
    }
    return elevenlabsVoiceover(ctx, script, config);
  };

  /**
   * ElevenLabs answers with the audio itself: there is no job to resume. An attempt reuses, in order, the audio
   * an earlier attempt stored under the job's output key, then the audio of an earlier attempt's request whose
   * answer was lost (timeout, crash while receiving), found in ElevenLabs' history by voice, model and text;
   * only when neither exists does it pay for a new request.
   */
  async function elevenlabsVoiceover(
    ctx: WorkContext,
    script: string,
    config: { voiceId?: string; modelId?: string; speed?: number; stability?: number; similarityBoost?: number },
  ): Promise<WorkResult> {
    const client = deps.clients.elevenlabs!;
    const record = requireRecorder(ctx);
    const model = config.modelId ?? AI_DEFAULTS.elevenlabsModel;
    const voiceId = config.voiceId ?? ELEVENLABS_DEFAULT_VOICE;
    // Characters are the billing unit and known up front: the estimate is the cost.
    const cost = estimateAiCost("generate-voiceover", "elevenlabs", { script, modelId: model }, deps.pricing);
    const key = jobOutputKey(ctx, "mp3");
    const file = join(ctx.workDir, "elevenlabs.mp3");
    const meta = (ctx.node.metadata ?? {}) as Record<string, unknown>;
    let requestId = typeof meta.providerJobId === "string" ? meta.providerJobId : undefined;
    let alignment: ElevenlabsAlignment | undefined;

    const recovered = await (async () => {
      if (await ctx.storage.exists(key)) {
        ctx.logger.info({ s3Key: key }, "reusing the audio an earlier attempt already paid for");
        await ctx.storage.download(key, file);
        return true;
      }
      const lost = lostElevenlabsRequest(ctx, meta);
      if (!lost) return false;
      const item = await client.findSpeech({ voiceId, modelId: model, text: script, sinceUnix: lost.sinceUnix }, ctx.signal);
      if (!item) {
        ctx.logger.warn({ provider: "elevenlabs" }, "ElevenLabs' history has no audio for the lost request; requesting it now");
        return false;
      }
      if (item.state !== "created") {
        throw new RetryAfterError(
          LOST_SPEECH_RETRY_MS,
          `ElevenLabs is still generating the audio of an earlier attempt (history item ${item.history_item_id}); waiting for it instead of paying again`,
        );
      }
      ctx.logger.info(
        { provider: "elevenlabs", historyItemId: item.history_item_id, requestId: item.request_id },
        "taking the audio an earlier attempt paid for from ElevenLabs' history",
      );
      await client.historyAudio(item.history_item_id, file, ctx.signal);
      requestId = item.request_id ?? item.history_item_id;
      return true;
    })();
    if (!recovered) {
      await record({ provider: "elevenlabs", phase: "creating", clientRef: clientRefOf(ctx.job.jobId), estimatedCost: cost });
      ctx.progress(10);
      try {
        const speech = await client.textToSpeech(
          { voiceId, modelId: model, text: script, speed: config.speed, stability: config.stability, similarityBoost: config.similarityBoost },
          file,
          ctx.signal,
        );
        ctx.logger.info(
          { provider: "elevenlabs", requestId: speech.requestId, historyItemId: speech.historyItemId, characterCost: speech.characterCost },
          "ElevenLabs speech received",
        );
        requestId = speech.requestId;
        alignment = speech.alignment;
      } catch (error) {
        if (createdNothing(error)) await record({ provider: "elevenlabs", phase: "refused" }).catch(() => undefined);
        throw error;
      }
    }
    ctx.progress(80);
    const { output, probe: p } = await storeResult(ctx, file, { type: "audio", ext: "mp3", contentType: "audio/mpeg", what: "the ElevenLabs audio" });
    const timing = speechTiming(ctx, script, alignment, p.durationSeconds);
    const providerJobId = requestId ?? `${clientRefOf(ctx.job.jobId)}-audio`;
    if (typeof meta.providerJobId !== "string") {
      await record({ provider: "elevenlabs", phase: "created", providerJobId, clientRef: clientRefOf(ctx.job.jobId), estimatedCost: cost });
    }
    return {
      output: { ...output, ...providerFields("elevenlabs", { providerJobId, voiceId, modelId: model, characters: script.length }), timing } as NodeOutput,
      cost,
    };
  }

  /**
   * The sentences' timing from ElevenLabs' character alignment; audio recovered from storage or the history has
   * none (nor does an alignment that is not of the script's characters), so it is then spread by word count over
   * the audio's probed length, and the log says so.
   */
  function speechTiming(ctx: WorkContext, script: string, alignment: ElevenlabsAlignment | undefined, durationSeconds: number): SpeechTiming {
    const sentences = splitSentences(script);
    const aligned = alignment ? sentencesFromAlignment(alignment, sentences) : undefined;
    if (aligned) return { source: "provider", sentences: aligned };
    ctx.logger.warn(
      { provider: "elevenlabs", sentences: sentences.length, durationSeconds, reason: alignment ? "alignment does not match the script" : "no alignment" },
      "sentence timing estimated by word count: this audio came without a usable character alignment",
    );
    return { source: "estimated", sentences: spreadByWords(sentences, durationSeconds) };
  }

  /** An earlier attempt of this job sent a request whose answer never arrived: since when to search the history. */
  function lostElevenlabsRequest(ctx: WorkContext, meta: Record<string, unknown>): { sinceUnix: number } | undefined {
    const earlier = (meta.providerJob ?? {}) as { provider?: unknown; phase?: unknown; clientRef?: unknown; at?: unknown };
    if (earlier.provider !== "elevenlabs" || earlier.phase !== "creating" || earlier.clientRef !== clientRefOf(ctx.job.jobId)) return undefined;
    const at = typeof earlier.at === "string" ? Date.parse(earlier.at) : Number.NaN;
    // The provider's clock may differ from the database's: search a margin before the recorded time.
    return { sinceUnix: Math.floor((Number.isNaN(at) ? Date.now() - 86_400_000 : at) / 1000) - CLOCK_MARGIN_S };
  }

  const animation: WorkFunction = async (ctx) => {
    const config = parseConfig(ctx.node, "generate-animation");
    const provider: ProviderName = selectProvider("generate-animation", config.provider, configured);
    const prompt = await resolvePrompt(ctx, config.prompt);
    const image = await resolveImage(ctx);
    const aspectRatio = config.aspectRatio ?? "16:9";
    const started = performance.now();

    if (provider === "local") {
      const seconds = config.durationSeconds ?? AI_DEFAULTS.localAnimationSeconds;
      await recordLocal(ctx, estimateAiCost("generate-animation", "local", { durationSeconds: seconds }, deps.pricing));
      ctx.progress(5);
      const { path } = await renderLocalAnimation({
        workDir: ctx.workDir,
        signal: ctx.signal,
        fontFile: deps.localFontFile,
        timeoutMs: deps.localTimeoutMs,
        prompt,
        durationSeconds: seconds,
        aspectRatio,
        image: image ? { path: image.path, format: image.format } : undefined,
        onProgress: progressRange(ctx, 10, 90),
      });
      const { output } = await storeResult(ctx, path, { type: "video", ext: "mp4", contentType: "video/mp4", what: "the local animation" });
      return { output: { ...output, ...providerFields("local", { imageToVideo: !!image }) }, cost: deps.pricing.local(elapsedSeconds(started)) };
    }

    if (image && image.bytes > MAX_INLINE_IMAGE_BYTES) {
      throw new WorkInputError(
        `input "image" is ${Math.round(image.bytes / 1024)} KiB; ${provider} takes at most ${MAX_INLINE_IMAGE_BYTES / 1024 ** 2} MiB inline`,
      );
    }
    const imageBase64 = image ? (await readFile(image.path)).toString("base64") : undefined;

    if (provider === "veo3") {
      const veo = deps.clients.veo3!;
      const model = config.modelId ?? AI_DEFAULTS.veoModel;
      // Veo 3 renders 4, 6 or 8 seconds: the longest not above the wish, 4 when asked for less.
      const durationSeconds = veoDurationFor(config.durationSeconds);
      const job = await runPaidJob(
        ctx,
        {
          provider: "veo3",
          estimatedCost: estimateAiCost("generate-animation", "veo3", { durationSeconds, modelId: model }, deps.pricing),
          create: (_ref, signal) =>
            veo.generate(
              {
                model,
                prompt,
                negativePrompt: config.negativePrompt,
                aspectRatio,
                durationSeconds,
                image: image && imageBase64 ? { base64: imageBase64, mimeType: image.mimeType } : undefined,
              },
              signal,
            ),
          poll: (id, signal) => veo.poll(id, signal),
        },
        { pollIntervalMs: deps.pollIntervalMs, maxWaitMs: deps.maxWaitMs, onProgress: progressRange(ctx, 10, 80) },
      );
      ctx.progress(82);
      const file = await download(ctx, "veo3", job.url, "veo.mp4", { "x-goog-api-key": deps.secrets.veo3! });
      const { output, probe: p } = await storeResult(ctx, file, { type: "video", ext: "mp4", contentType: "video/mp4", what: "the Veo video" });
      return {
        output: { ...output, ...providerFields("veo3", { providerJobId: job.id, modelId: model, imageToVideo: !!image }) },
        cost: deps.pricing.veo3(Math.round(p.durationSeconds), model),
      };
    }

    const runway = deps.clients.runway!;
    const model = config.modelId ?? (image ? AI_DEFAULTS.runwayImageModel : AI_DEFAULTS.runwayTextModel);
    if (model === AI_DEFAULTS.runwayImageModel && !image) throw new WorkInputError(`Runway ${model} needs an image input (first frame)`);
    const duration = runwayDurationFor(config.durationSeconds);
    const promptImage = image && imageBase64 ? `data:${image.mimeType};base64,${imageBase64}` : undefined;
    if (promptImage && promptImage.length >= RUNWAY_MAX_DATA_URI) {
      throw new WorkInputError(
        `input "image" is ${Math.round(image!.bytes / 1024)} KiB, a ${(promptImage.length / 1e6).toFixed(1)} MB data URI; Runway takes a data URI under 5 MB ` +
          `(about ${Math.floor((RUNWAY_MAX_DATA_URI * 3) / 4 / 1024)} KiB of image): use a smaller or more compressed image`,
      );
    }
    const job = await runPaidJob(
      ctx,
      {
        provider: "runway",
        estimatedCost: estimateAiCost("generate-animation", "runway", { durationSeconds: duration, modelId: model, hasImage: !!image }, deps.pricing),
        create: (_ref, signal) =>
          runway.generate({ model, promptText: prompt.slice(0, 1000), promptImage, ratio: aspectRatio === "9:16" ? "720:1280" : "1280:720", duration }, signal),
        poll: (id, signal) => runway.poll(id, signal),
        cancel: (id) => runway.cancel(id),
      },
      { pollIntervalMs: deps.pollIntervalMs, maxWaitMs: deps.maxWaitMs, onProgress: progressRange(ctx, 10, 80) },
    );
    ctx.progress(82);
    const file = await download(ctx, "runway", job.url, "runway.mp4");
    const { output } = await storeResult(ctx, file, { type: "video", ext: "mp4", contentType: "video/mp4", what: "the Runway video" });
    // Runway charges the requested duration's credits.
    return {
      output: { ...output, ...providerFields("runway", { providerJobId: job.id, modelId: model, imageToVideo: !!image }) },
      cost: deps.pricing.runway(duration, model),
    };
  };

  /**
   * A provider that keeps saying "later" (429 after 429: a spent quota looks like that too) fails the node with the
   * reason once the job has been told to wait for rateLimitMaxWaitMs, instead of holding a slot for hours. The clock
   * starts at the job's first "later" in this process (time queued behind other jobs does not count); a restart, or
   * a redelivery to another replica, starts it again, so the bound is per process.
   */
  const waitingSince = new Map<string, number>();
  const patient =
    (work: WorkFunction): WorkFunction =>
    async (ctx) => {
      const jobId = ctx.job.jobId;
      try {
        const result = await work(ctx);
        waitingSince.delete(jobId);
        return result;
      } catch (error) {
        if (!(error instanceof RetryAfterError)) {
          waitingSince.delete(jobId);
          throw error;
        }
        const now = Date.now();
        for (const [id, since] of waitingSince) if (now - since > 2 * deps.rateLimitMaxWaitMs) waitingSince.delete(id);
        const since = waitingSince.get(jobId) ?? now;
        waitingSince.set(jobId, since);
        const waited = now - since;
        if (waited + error.delayMs <= deps.rateLimitMaxWaitMs) throw error;
        waitingSince.delete(jobId);
        const provider = String((ctx.node.config as { provider?: unknown } | null)?.provider ?? "the provider");
        throw new WorkInputError(
          `${error.message}; still refused after ${Math.round(waited / 1000)} s (the limit is ${Math.round(deps.rateLimitMaxWaitMs / 1000)} s): ` +
            `${provider}'s quota is likely spent. Run the node again when it has been raised or has reset`,
        );
      }
    };

  return { "talking-head": patient(talkingHead), "generate-voiceover": patient(voiceover), "generate-animation": patient(animation) };
}
