import { readFile } from "node:fs/promises";
import { AI_DEFAULTS, estimateAiCost, type GenerateAnimationConfig, runwayDurationFor, veoDurationFor } from "@vp/contracts";
import type { WorkContext, WorkFunction, WorkResult } from "@vp/runtime";
import type { z } from "zod";
import { WorkInputError } from "../errors";
import { renderLocalAnimation } from "../local/render";
import {
  type AiWorkDeps,
  configuredProviders,
  downloadResult,
  elapsedSeconds,
  type ImageInput,
  parseConfig,
  progressRange,
  providerFields,
  recordLocal,
  resolveImage,
  resolvePrompt,
  selectProvider,
  storeResult,
} from "./common";
import { runPaidJob } from "./paid-job";

type Config = z.infer<typeof GenerateAnimationConfig>;

/** What an animation is made of, resolved from the node's config and inputs. */
interface Animation {
  config: Config;
  prompt: string;
  aspectRatio: NonNullable<Config["aspectRatio"]>;
  /** The first frame (image-to-video); for a paid provider with its bytes in base64, sent inline. */
  image?: ImageInput & { base64?: string };
}

/** Largest first frame sent inline (Veo bytesBase64Encoded, Runway data URI). */
const MAX_INLINE_IMAGE_BYTES = 5 * 1024 * 1024;
/** Runway's limit for an image sent inline: a data URI under 5 MB (docs.dev.runwayml.com "Inputs", read 2026-12-07). */
const RUNWAY_MAX_DATA_URI = 5_000_000;

/** generate-animation: a clip from a prompt (and an optional first frame), by Veo 3, Runway or locally. */
export function createGenerateAnimationWork(deps: AiWorkDeps): WorkFunction {
  const configured = configuredProviders(deps.clients);
  return async (ctx) => {
    const config = parseConfig(ctx.node, "generate-animation");
    const provider = selectProvider("generate-animation", config.provider, configured);
    const prompt = await resolvePrompt(ctx, config.prompt);
    const image = await resolveImage(ctx);
    const animation: Animation = { config, prompt, aspectRatio: config.aspectRatio ?? "16:9", image };
    if (provider === "local") return localAnimation(deps, ctx, animation);

    if (image && image.bytes > MAX_INLINE_IMAGE_BYTES) {
      throw new WorkInputError(
        `input "image" is ${Math.round(image.bytes / 1024)} KiB; ${provider} takes at most ${MAX_INLINE_IMAGE_BYTES / 1024 ** 2} MiB inline`,
      );
    }
    if (image) animation.image = { ...image, base64: (await readFile(image.path)).toString("base64") };
    return provider === "veo3" ? veoAnimation(deps, ctx, animation) : runwayAnimation(deps, ctx, animation);
  };
}

/** The prompt-derived pattern rendered with ffmpeg (the image, when given, as the first frame). */
async function localAnimation(deps: AiWorkDeps, ctx: WorkContext, { config, prompt, aspectRatio, image }: Animation): Promise<WorkResult> {
  const started = performance.now();
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

/** A Veo 3 operation: created once per job, polled, its video downloaded with the key; paid per generated second. */
async function veoAnimation(deps: AiWorkDeps, ctx: WorkContext, { config, prompt, aspectRatio, image }: Animation): Promise<WorkResult> {
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
            image: image?.base64 ? { base64: image.base64, mimeType: image.mimeType } : undefined,
          },
          signal,
        ),
      poll: (id, signal) => veo.poll(id, signal),
    },
    { pollIntervalMs: deps.pollIntervalMs, maxWaitMs: deps.maxWaitMs, onProgress: progressRange(ctx, 10, 80) },
  );
  ctx.progress(82);
  const file = await downloadResult(deps, ctx, { provider: "veo3", url: job.url, name: "veo.mp4", keyHeader: { "x-goog-api-key": deps.secrets.veo3! } });
  const { output, probe: p } = await storeResult(ctx, file, { type: "video", ext: "mp4", contentType: "video/mp4", what: "the Veo video" });
  return {
    output: { ...output, ...providerFields("veo3", { providerJobId: job.id, modelId: model, imageToVideo: !!image }) },
    cost: deps.pricing.veo3(Math.round(p.durationSeconds), model),
  };
}

/** A Runway task: created once per job, polled (cancelled at Runway on a user's cancel); paid by requested credits. */
async function runwayAnimation(deps: AiWorkDeps, ctx: WorkContext, { config, prompt, aspectRatio, image }: Animation): Promise<WorkResult> {
  const runway = deps.clients.runway!;
  const model = config.modelId ?? (image ? AI_DEFAULTS.runwayImageModel : AI_DEFAULTS.runwayTextModel);
  if (model === AI_DEFAULTS.runwayImageModel && !image) throw new WorkInputError(`Runway ${model} needs an image input (first frame)`);
  // A config naming Runway was checked against the model's durations when saved; without one, the nearest it renders.
  const duration = runwayDurationFor(config.durationSeconds, model);
  const promptImage = image?.base64 ? `data:${image.mimeType};base64,${image.base64}` : undefined;
  if (image && promptImage && promptImage.length >= RUNWAY_MAX_DATA_URI) {
    throw new WorkInputError(
      `input "image" is ${Math.round(image.bytes / 1024)} KiB, a ${(promptImage.length / 1e6).toFixed(1)} MB data URI; Runway takes a data URI under 5 MB ` +
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
  const file = await downloadResult(deps, ctx, { provider: "runway", url: job.url, name: "runway.mp4" });
  const { output } = await storeResult(ctx, file, { type: "video", ext: "mp4", contentType: "video/mp4", what: "the Runway video" });
  // Runway charges the requested duration's credits.
  return {
    output: { ...output, ...providerFields("runway", { providerJobId: job.id, modelId: model, imageToVideo: !!image }) },
    cost: deps.pricing.runway(duration, model),
  };
}
