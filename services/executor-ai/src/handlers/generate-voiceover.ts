import { join } from "node:path";
import { AI_DEFAULTS, estimateAiCost, type GenerateVoiceoverConfig, type NodeOutput, type SpeechTiming, splitSentences, spreadByWords } from "@vp/contracts";
import { jobOutputKey, type WorkContext, type WorkFunction, type WorkResult } from "@vp/runtime";
import type { z } from "zod";
import { createdNothing, RetryAfterError } from "../errors";
import { renderLocalVoiceover } from "../local/render";
import {
  ELEVENLABS_DEFAULT_VOICE,
  type ElevenlabsAlignment,
  type ElevenlabsClient,
  type ElevenlabsSpeech,
  elevenlabsMaxCharacters,
  sentencesFromAlignment,
} from "../providers/elevenlabs";
import {
  type AiWorkDeps,
  configuredProviders,
  elapsedSeconds,
  parseConfig,
  providerFields,
  recordLocal,
  requireRecorder,
  resolveScript,
  selectProvider,
  storeResult,
} from "./common";
import { clientRefOf } from "./paid-job";

type Config = z.infer<typeof GenerateVoiceoverConfig>;

/** How long to wait before looking again for audio ElevenLabs is still generating for an earlier attempt. */
const LOST_SPEECH_RETRY_MS = 2000;
/** How far before the recorded request time the history is searched (the provider's clock may differ from ours). */
const CLOCK_MARGIN_S = 300;

/** generate-voiceover: the script spoken by ElevenLabs or espeak-ng, with when each sentence is said. */
export function createGenerateVoiceoverWork(deps: AiWorkDeps): WorkFunction {
  const configured = configuredProviders(deps.clients);
  return async (ctx) => {
    const config = parseConfig(ctx.node, "generate-voiceover");
    const provider = selectProvider("generate-voiceover", config.provider, configured);
    const script = await resolveScript(
      ctx,
      config.script,
      provider === "elevenlabs" ? elevenlabsMaxCharacters(config.modelId ?? AI_DEFAULTS.elevenlabsModel) : 10_000,
    );
    return provider === "local" ? localVoiceover(deps, ctx, script, config) : elevenlabsVoiceover(deps, ctx, script, config);
  };
}

/** espeak-ng speech encoded as AAC, its sentences measured as they were spoken. */
async function localVoiceover(deps: AiWorkDeps, ctx: WorkContext, script: string, config: Config): Promise<WorkResult> {
  const started = performance.now();
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

/**
 * ElevenLabs answers with the audio itself: there is no job to resume. An attempt reuses, in order, the audio
 * an earlier attempt stored under its output key (one per attempt of the job), then the audio of an earlier attempt's request whose
 * answer was lost (timeout, crash while receiving), found in ElevenLabs' history by voice, model and text;
 * only when neither exists does it pay for a new request.
 */
async function elevenlabsVoiceover(deps: AiWorkDeps, ctx: WorkContext, script: string, config: Config): Promise<WorkResult> {
  const client = deps.clients.elevenlabs!;
  const record = requireRecorder(ctx);
  const request: ElevenlabsSpeech = {
    voiceId: config.voiceId ?? ELEVENLABS_DEFAULT_VOICE,
    modelId: config.modelId ?? AI_DEFAULTS.elevenlabsModel,
    text: script,
    speed: config.speed,
    stability: config.stability,
    similarityBoost: config.similarityBoost,
  };
  // Characters are the billing unit and known up front: the estimate is the cost.
  const cost = estimateAiCost("generate-voiceover", "elevenlabs", { script, modelId: request.modelId }, deps.pricing);
  const file = join(ctx.workDir, "elevenlabs.mp3");
  const meta = (ctx.node.metadata ?? {}) as Record<string, unknown>;
  const clientRef = clientRefOf(ctx.job.jobId);

  const speech = (await reuseSpeech(client, ctx, meta, request, file)) ?? (await requestSpeech(client, ctx, request, file, cost));
  ctx.progress(80);
  const { output, probe: p } = await storeResult(ctx, file, { type: "audio", ext: "mp3", contentType: "audio/mpeg", what: "the ElevenLabs audio" });
  const timing = speechTiming(ctx, script, speech.alignment, p.durationSeconds);
  const providerJobId = speech.requestId ?? `${clientRef}-audio`;
  if (typeof meta.providerJobId !== "string") {
    await record({ provider: "elevenlabs", phase: "created", providerJobId, clientRef, estimatedCost: cost });
  }
  const fields = providerFields("elevenlabs", { providerJobId, voiceId: request.voiceId, modelId: request.modelId, characters: script.length });
  return { output: { ...output, ...fields, timing } as NodeOutput, cost };
}

interface Speech {
  /** What identifies the paid request (ElevenLabs' request id, else the history item's id). */
  requestId?: string;
  alignment?: ElevenlabsAlignment;
}

/**
 * Audio an earlier attempt already paid for, written to `file`: stored under the job's output key, or found in
 * ElevenLabs' history when that attempt's answer was lost. Undefined when there is none (a new request is needed);
 * RetryAfterError while ElevenLabs is still generating it.
 */
async function reuseSpeech(
  client: ElevenlabsClient,
  ctx: WorkContext,
  meta: Record<string, unknown>,
  request: ElevenlabsSpeech,
  file: string,
): Promise<Speech | undefined> {
  // Each attempt stores under its own key: the newest attempt's audio first, this one's included.
  for (let attempt = ctx.attempt; attempt >= 1; attempt--) {
    const key = jobOutputKey({ job: ctx.job, attempt }, "mp3");
    if (!(await ctx.storage.exists(key))) continue;
    ctx.logger.info({ s3Key: key, storedBy: attempt }, "reusing the audio an earlier attempt already paid for");
    await ctx.storage.download(key, file);
    return { requestId: typeof meta.providerJobId === "string" ? meta.providerJobId : undefined };
  }
  const lost = lostRequest(ctx, meta);
  if (!lost) return undefined;
  const item = await client.findSpeech({ voiceId: request.voiceId, modelId: request.modelId, text: request.text, sinceUnix: lost.sinceUnix }, ctx.signal);
  if (!item) {
    ctx.logger.warn({ provider: "elevenlabs" }, "ElevenLabs' history has no audio for the lost request; requesting it now");
    return undefined;
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
  return { requestId: item.request_id ?? item.history_item_id };
}

/** A new, paid request: its intent is recorded first; a request certainly refused is recorded as such. */
async function requestSpeech(client: ElevenlabsClient, ctx: WorkContext, request: ElevenlabsSpeech, file: string, estimatedCost: number): Promise<Speech> {
  const record = requireRecorder(ctx);
  await record({ provider: "elevenlabs", phase: "creating", clientRef: clientRefOf(ctx.job.jobId), estimatedCost });
  ctx.progress(10);
  try {
    const speech = await client.textToSpeech(request, file, ctx.signal);
    ctx.logger.info(
      { provider: "elevenlabs", requestId: speech.requestId, historyItemId: speech.historyItemId, characterCost: speech.characterCost },
      "ElevenLabs speech received",
    );
    return { requestId: speech.requestId, alignment: speech.alignment };
  } catch (error) {
    if (createdNothing(error)) await record({ provider: "elevenlabs", phase: "refused" }).catch(() => undefined);
    throw error;
  }
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
function lostRequest(ctx: WorkContext, meta: Record<string, unknown>): { sinceUnix: number } | undefined {
  const earlier = (meta.providerJob ?? {}) as { provider?: unknown; phase?: unknown; clientRef?: unknown; at?: unknown };
  if (earlier.provider !== "elevenlabs" || earlier.phase !== "creating" || earlier.clientRef !== clientRefOf(ctx.job.jobId)) return undefined;
  const at = typeof earlier.at === "string" ? Date.parse(earlier.at) : Number.NaN;
  // The provider's clock may differ from the database's: search a margin before the recorded time.
  return { sinceUnix: Math.floor((Number.isNaN(at) ? Date.now() - 86_400_000 : at) / 1000) - CLOCK_MARGIN_S };
}
