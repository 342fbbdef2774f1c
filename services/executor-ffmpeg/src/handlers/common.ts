import { join } from "node:path";
import type { z } from "zod";
import type { NodeOutput, NodeType, SerializedNode } from "@vp/contracts";
import { factsOfProbe, probeInput, type MediaFacts, type ProbeResult } from "@vp/media";
import { validateKey } from "@vp/storage";
import { asInputError, WorkInputError } from "./errors";
import { localExtension, round3 } from "./files";
import { LambdaFunctionError, type LambdaInvoker } from "./lambda";
import type { WorkContext } from "./types";

/** Where an ffmpeg node's work runs: this process's ffmpeg, or the node type's Lambda function. */
export type FfmpegBackend = "local" | "lambda";

/** What every ffmpeg-shaped work function is built with. */
export interface FfmpegWorkOptions {
  /** Upper bound of one ffmpeg run; a longer one is killed and the attempt fails (and is retried). */
  ffmpegTimeoutMs?: number;
  /** Dollars per CPU-second of local ffmpeg (FFMPEG_COST_PER_CPU_SECOND_USD); default 0. */
  costPerCpuSecond?: number;
  /** Where nodes without a config.provider run (FFMPEG_BACKEND); default local. */
  defaultBackend?: FfmpegBackend;
  /** Present when the executor is configured for Lambda (FFMPEG_BACKEND=lambda). */
  lambda?: LambdaInvoker;
  /**
   * From this attempt on, a node whose function failed for a reason other than its inputs (timeout, memory,
   * throttling) runs on this executor's ffmpeg instead (LAMBDA_LOCAL_FALLBACK_AFTER); 0 or unset: never.
   */
  lambdaLocalFallbackAfter?: number;
  /** Inputs (summed) larger than this run here: with the output they would not fit the function's /tmp. */
  lambdaMaxInputBytes?: number;
  /** Inputs (summed) longer than this run here: their work would not finish within the function's timeout. */
  lambdaMaxInputSeconds?: number;
}

/** Defaults for a function with 10,240 MB of /tmp and 900 s (lambdas/README.md): inputs, output and headroom. */
export const LAMBDA_MAX_INPUT_BYTES = 4 * 1024 ** 3;
export const LAMBDA_MAX_INPUT_SECONDS = 3600;

/** The node's config checked against its type's schema; a mistake fails the node with the field named. */
export function parseConfig<S extends z.ZodType>(schema: S, type: NodeType, config: unknown): z.output<S> {
  const parsed = schema.safeParse(config ?? {});
  if (!parsed.success) {
    const reason = parsed.error.issues.map((i) => `${i.path.join(".") || "config"}: ${i.message}`).join("; ");
    throw new WorkInputError(`${type} config is invalid: ${reason}`);
  }
  return parsed.data;
}

/**
 * The backend a node runs on: its config.provider ("ffmpeg" or "lambda") when set, else the executor's default. A
 * Lambda node whose stored inputs are too large or too long for the function runs here instead, and says why.
 */
export function chooseBackend(
  type: NodeType,
  provider: string | undefined,
  options: FfmpegWorkOptions,
  route?: { ctx: Pick<WorkContext, "logger">; inputs: Array<{ size?: unknown; duration?: unknown }> },
): FfmpegBackend {
  const backend: FfmpegBackend = provider === "lambda" ? "lambda" : provider === "ffmpeg" ? "local" : (options.defaultBackend ?? "local");
  if (backend === "lambda" && !options.lambda) {
    throw new WorkInputError(`${type} is set to run on Lambda, but this executor has no Lambda backend (FFMPEG_BACKEND=lambda with S3 storage)`);
  }
  if (backend === "lambda" && route) {
    const sum = (field: "size" | "duration") => route.inputs.reduce((total, i) => total + (typeof i[field] === "number" ? (i[field] as number) : 0), 0);
    const bytes = sum("size");
    const seconds = sum("duration");
    const maxBytes = options.lambdaMaxInputBytes ?? LAMBDA_MAX_INPUT_BYTES;
    const maxSeconds = options.lambdaMaxInputSeconds ?? LAMBDA_MAX_INPUT_SECONDS;
    if (bytes > maxBytes || seconds > maxSeconds) {
      route.ctx.logger.info(
        { type, inputBytes: bytes, inputSeconds: seconds, maxBytes, maxSeconds },
        "inputs too large for the Lambda function: running locally",
      );
      return "local";
    }
  }
  return backend;
}

/** Whether a failed Lambda invocation of this attempt falls back to local ffmpeg (see lambdaLocalFallbackAfter). */
export function fallsBackToLocal(error: unknown, ctx: Pick<WorkContext, "attempt" | "logger">, options: FfmpegWorkOptions): boolean {
  const after = options.lambdaLocalFallbackAfter ?? 0;
  const retryable = error instanceof LambdaFunctionError || (error as Error)?.name === "TooManyRequestsException";
  if (!retryable || after <= 0 || ctx.attempt < after) return false;
  ctx.logger.warn({ err: error, attempt: ctx.attempt }, "the Lambda function keeps failing: running this attempt on local ffmpeg");
  return true;
}

export type MediaKind = "video" | "audio";

/**
 * The media contract of one input, checked on what the upstream node recorded about its output before any
 * work starts: completed, a stored output of the slot's media type, and (where the upstream probed its file)
 * the stream the slot needs. "a video" given where an audio is needed is refused here, not by ffmpeg.
 */
export function requireMediaInput(slot: string, upstream: SerializedNode | undefined, kind: MediaKind): NodeOutput & { s3Key: string } {
  if (!upstream) throw new WorkInputError(`input "${slot}" is missing`);
  const output = upstream.output;
  if (upstream.status !== "completed" || !output || typeof output.s3Key !== "string" || !output.s3Key) {
    throw new WorkInputError(`input "${slot}": node "${upstream.id}" has no completed ${kind} output`);
  }
  if (output.type !== kind) {
    throw new WorkInputError(
      `input "${slot}": node "${upstream.id}" produces ${output.type}, but ${slot} needs ${kind === "audio" ? "an audio file" : "a video"}`,
    );
  }
  if (kind === "video" && output.videoCodec === undefined && output.audioCodec !== undefined) {
    throw new WorkInputError(`input "${slot}": node "${upstream.id}" is an audio file, but ${slot} needs a video`);
  }
  if (kind === "audio" && output.audioCodec === undefined && output.videoCodec !== undefined) {
    throw new WorkInputError(`input "${slot}": node "${upstream.id}" has no audio stream`);
  }
  return output as NodeOutput & { s3Key: string };
}

/**
 * Downloads one input under a generated name (`<name>.<ext>` in the work directory; the extension from a
 * fixed list, never from the key) and describes it: from the probe facts its producer stored in its output
 * when they are complete and match the downloaded file's size, else by probing it (probeInput). Anything
 * wrong with the file fails the node naming the input.
 */
export async function fetchInput(
  ctx: WorkContext,
  input: { slot: string; node: SerializedNode; output: NodeOutput & { s3Key: string }; name: string; kind: MediaKind },
): Promise<{ path: string; probe: ProbeResult }> {
  const { slot, node, output, name, kind } = input;
  const path = join(ctx.workDir, `${name}.${localExtension(output.contentType, kind === "audio" ? "m4a" : "mp4")}`);
  const context = `input "${slot}" (node "${node.id}")`;
  try {
    validateKey(output.s3Key);
    await ctx.storage.download(output.s3Key, path);
    const p = await probeInput(path, output, { signal: ctx.signal });
    if (kind === "video" && !p.video) throw new WorkInputError(`${context}: expected a video file but it has no video stream`);
    if (kind === "audio" && !p.audio) throw new WorkInputError(`${context}: expected an audio file but it has no audio stream`);
    return { path, probe: p };
  } catch (error) {
    throw asInputError(error, context);
  }
}

/**
 * The node's output for a stored MP4: the API fields (duration, size, ...), then the rest of the file's probe
 * facts, which the nodes reading this output use instead of probing the file again.
 */
export function videoOutput(key: string, size: number, fields: Omit<MediaFacts, "size" | "duration"> & { duration: number; strategy?: string }): NodeOutput {
  const { duration, width, height, videoCodec, audioCodec, strategy, ...facts } = fields;
  const output: NodeOutput = {
    type: "video",
    s3Key: key,
    duration: round3(duration),
    size,
    width,
    height,
    videoCodec,
    audioCodec,
    contentType: "video/mp4",
    strategy,
    formatName: facts.formatName,
    videoProfile: facts.videoProfile,
    pixFmt: facts.pixFmt,
    fps: facts.fps,
    videoTimeBase: facts.videoTimeBase,
    sampleRate: facts.sampleRate,
    audioChannels: facts.audioChannels,
    audioChannelLayout: facts.audioChannelLayout,
  };
  // Keys that are undefined would be dropped by JSON anyway; keep the stored output tidy.
  for (const k of Object.keys(output) as (keyof NodeOutput)[]) if (output[k] === undefined) delete output[k];
  return output;
}

export function outputOfProbe(key: string, size: number, p: ProbeResult, strategy?: string): NodeOutput {
  const { size: _probedSize, ...facts } = factsOfProbe(p);
  return videoOutput(key, size, { ...facts, duration: p.durationSeconds, strategy });
}

/** The probe facts of an input for a Lambda event (input_facts), from the output that describes it. */
export function factsOfOutput(output: NodeOutput): MediaFacts {
  const {
    duration,
    size,
    width,
    height,
    videoCodec,
    audioCodec,
    formatName,
    videoProfile,
    pixFmt,
    fps,
    videoTimeBase,
    sampleRate,
    audioChannels,
    audioChannelLayout,
  } = output;
  const facts: MediaFacts = {
    duration,
    size,
    width,
    height,
    videoCodec,
    audioCodec,
    formatName,
    videoProfile,
    pixFmt,
    fps,
    videoTimeBase,
    sampleRate,
    audioChannels,
    audioChannelLayout,
  };
  for (const k of Object.keys(facts) as (keyof MediaFacts)[]) if (facts[k] === undefined) delete facts[k];
  return facts;
}

/**
 * A Lambda invoked RequestResponse says nothing until it returns: the bar moves on an estimate instead,
 * approaching 95 % as the expected time passes (never claiming done). Returns the stop function.
 */
export function estimateProgress(ctx: WorkContext, expectedSeconds: number, from = 5): () => void {
  const started = Date.now();
  const tau = Math.max(1, expectedSeconds);
  const timer = setInterval(() => {
    const t = (Date.now() - started) / 1000;
    ctx.progress(from + (95 - from) * (1 - Math.exp(-t / tau)));
  }, 500);
  return () => clearInterval(timer);
}
