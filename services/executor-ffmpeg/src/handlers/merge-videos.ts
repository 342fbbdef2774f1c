import { join } from "node:path";
import { MergeVideosConfig, type NodeOutput, type SerializedNode } from "@vp/contracts";
import { computeCost, mergeVideos, probeInput, type ProbeResult } from "@vp/media";
import { jobOutputKey } from "@vp/runtime";
import { validateKey } from "@vp/storage";
import { invokeOnce } from "./lambda-invocation";
import {
  chooseBackend,
  estimateProgress,
  factsOfOutput,
  outputOfProbe,
  parseConfig,
  videoOutput,
  type FfmpegBackend,
  type FfmpegWorkOptions,
  fallsBackToLocal,
} from "./common";
import { asInputError, WorkInputError } from "./errors";
import { localExtension } from "./files";
import type { WorkContext, WorkFunction, WorkResult } from "./types";

export type MergeVideosWorkOptions = FfmpegWorkOptions;

/** Share of the progress bar spent downloading segments; the merge itself gets the rest but the last 5 %. */
const DOWNLOAD_SHARE = 10;
const MERGE_SHARE = 85;

function segmentOutput(segment: SerializedNode): NodeOutput & { s3Key: string } {
  const output = segment.output;
  if (segment.status !== "completed" || !output || typeof output.s3Key !== "string" || output.type !== "video") {
    throw new WorkInputError(`segment "${segment.id}" has no completed video output`);
  }
  if (output.videoCodec === undefined && output.audioCodec !== undefined) {
    throw new WorkInputError(`segment "${segment.id}" is an audio file, not a video`);
  }
  return output as NodeOutput & { s3Key: string };
}

/** What either backend merges: the `segments` inputs in order with their stored outputs, and where the result goes. */
interface MergePlan {
  config: MergeVideosConfig;
  segments: SerializedNode[];
  outputs: Array<NodeOutput & { s3Key: string }>;
  /** The backend chosen for the node (still "lambda" in logs when an attempt falls back to local ffmpeg). */
  backend: FfmpegBackend;
  key: string;
}

/**
 * Joins the video outputs of the `segments` inputs, in order, into one MP4 (stream copy when they are
 * compatible, else a re-encode to one format), here or in the video-merger Lambda. Files reach ffmpeg
 * only as `seg-NNN.<ext>` in the job's work directory (invariant 8): keys are downloaded by the storage
 * layer, never handed to ffmpeg.
 */
export function createMergeVideosWork(options: MergeVideosWorkOptions = {}): WorkFunction {
  return async (ctx) => {
    const config = parseConfig(MergeVideosConfig, "merge-videos", ctx.node.config);
    const segments = ctx.inputs.segments ?? [];
    if (segments.length === 0) throw new WorkInputError("merge-videos has no segments");
    const outputs = segments.map(segmentOutput);
    const backend = chooseBackend("merge-videos", config.provider, options, { ctx, inputs: outputs });
    const plan: MergePlan = { config, segments, outputs, backend, key: jobOutputKey(ctx, "mp4") };

    if (backend === "lambda") {
      try {
        return await mergeOnLambda(ctx, options, plan);
      } catch (error) {
        // A function that keeps failing for reasons other than its inputs: this attempt runs here instead.
        if (!fallsBackToLocal(error, ctx, options)) throw error;
      }
    }
    return mergeHere(ctx, options, plan);
  };
}

/** The video-merger function merges the segments straight from and to storage; progress is estimated meanwhile. */
async function mergeOnLambda(ctx: WorkContext, options: MergeVideosWorkOptions, { config, segments, outputs, backend, key }: MergePlan): Promise<WorkResult> {
  outputs.forEach((o, i) => {
    try {
      validateKey(o.s3Key);
    } catch (error) {
      throw asInputError(error, `segment "${segments[i]!.id}"`);
    }
  });
  const stop = estimateProgress(ctx, outputs.reduce((sum, o) => sum + (o.duration ?? 5), 0) / 4);
  try {
    const result = await invokeOnce(ctx, options.lambda!, "video-merger", {
      input_keys: outputs.map((o) => o.s3Key),
      output_key: key,
      reencode: config.reencode,
      width: config.width,
      height: config.height,
      fps: config.fps,
      input_facts: Object.fromEntries(outputs.map((o) => [o.s3Key, factsOfOutput(o)])),
    });
    ctx.logger.info({ backend, segments: segments.length, duration: result.duration, size: result.size, cost: result.cost }, "segments merged");
    return {
      output: videoOutput(result.s3_key, result.size, {
        ...result.facts,
        duration: result.duration,
        width: result.width,
        height: result.height,
        videoCodec: result.video_codec,
        audioCodec: result.audio_codec,
        strategy: result.strategy,
      }),
      cost: result.cost,
    };
  } finally {
    stop();
  }
}

/** This process's ffmpeg merges the downloaded segments and the result is stored. */
async function mergeHere(ctx: WorkContext, options: MergeVideosWorkOptions, plan: MergePlan): Promise<WorkResult> {
  const { storage, workDir, signal, logger } = ctx;
  const { config, segments, backend, key } = plan;
  const { inputs, probes } = await downloadSegments(ctx, plan);
  const mergedPath = join(workDir, "output.mp4");
  let merged;
  try {
    merged = await mergeVideos({
      inputs,
      probes,
      output: mergedPath,
      workDir,
      mode: config.reencode ?? "auto",
      width: config.width,
      height: config.height,
      fps: config.fps,
      signal,
      timeoutMs: options.ffmpegTimeoutMs,
      onProgress: (percent) => ctx.progress(DOWNLOAD_SHARE + (percent * MERGE_SHARE) / 100),
      logger,
    });
  } catch (error) {
    throw asInputError(error, "ffmpeg could not merge the segments");
  }

  const { size } = await storage.putFile(key, mergedPath, { contentType: "video/mp4" });
  const { probe: result, strategy, cpuSeconds } = merged;
  logger.info({ backend, strategy, segments: segments.length, duration: result.durationSeconds, size, cpuSeconds }, "segments merged");
  return { output: outputOfProbe(key, size, result, strategy), cost: computeCost(cpuSeconds, options.costPerCpuSecond) };
}

/** Each segment downloaded to `seg-NNN.<ext>` and probed, one after another, filling the download share of the progress bar. */
async function downloadSegments(ctx: WorkContext, { segments, outputs }: MergePlan): Promise<{ inputs: string[]; probes: ProbeResult[] }> {
  const inputs: string[] = [];
  const probes: ProbeResult[] = [];
  for (const [i, segment] of segments.entries()) {
    const output = outputs[i]!;
    const local = join(ctx.workDir, `seg-${String(i).padStart(3, "0")}.${localExtension(output.contentType, "mp4")}`);
    try {
      validateKey(output.s3Key);
      await ctx.storage.download(output.s3Key, local);
      // The segment's stored probe facts stand in for an ffprobe when they describe this file.
      const p = await probeInput(local, output, { signal: ctx.signal });
      if (!p.video) throw new WorkInputError(`segment "${segment.id}": expected a video file but it has no video stream`);
      probes.push(p);
    } catch (error) {
      throw asInputError(error, `segment "${segment.id}"`);
    }
    inputs.push(local);
    ctx.progress(((i + 1) / segments.length) * DOWNLOAD_SHARE);
  }
  return { inputs, probes };
}
