import { join } from "node:path";
import { MergeVideosConfig, type NodeOutput, type SerializedNode } from "@vp/contracts";
import { computeCost, mergeVideos, probe, type ProbeResult } from "@vp/media";
import { outputKey, validateKey } from "@vp/storage";
import { asInputError, WorkInputError } from "./errors";
import { localExtension, round3 } from "./files";
import type { WorkFunction } from "./types";

export interface MergeVideosWorkOptions {
  /** Upper bound of one ffmpeg run; a longer one is killed and the attempt fails (and is retried). */
  ffmpegTimeoutMs?: number;
  /** Dollars per CPU-second of ffmpeg (FFMPEG_COST_PER_CPU_SECOND_USD); default 0. */
  costPerCpuSecond?: number;
}

/** Share of the progress bar spent downloading segments; the merge itself gets the rest but the last 5 %. */
const DOWNLOAD_SHARE = 10;
const MERGE_SHARE = 85;

function segmentOutput(segment: SerializedNode): NodeOutput {
  const output = segment.output;
  if (segment.status !== "completed" || !output || typeof output.s3Key !== "string" || output.type !== "video") {
    throw new WorkInputError(`segment "${segment.id}" has no completed video output`);
  }
  return output;
}

/**
 * Joins the video outputs of the `segments` inputs, in order, into one MP4 (stream copy when they are
 * compatible, else a re-encode to one format). Files reach ffmpeg only as `seg-NNN.<ext>` in the job's
 * work directory (invariant 8): keys are downloaded by the storage layer, never handed to ffmpeg.
 */
export function createMergeVideosWork(options: MergeVideosWorkOptions = {}): WorkFunction {
  return async (ctx) => {
    const started = performance.now();
    const { job, node, storage, workDir, signal, logger } = ctx;

    const parsedConfig = MergeVideosConfig.safeParse(node.config ?? {});
    if (!parsedConfig.success) {
      const reason = parsedConfig.error.issues.map((i) => `${i.path.join(".") || "config"}: ${i.message}`).join("; ");
      throw new WorkInputError(`merge-videos config is invalid: ${reason}`);
    }
    const config = parsedConfig.data;

    const segments = ctx.inputs.segments ?? [];
    if (segments.length === 0) throw new WorkInputError("merge-videos has no segments");
    const outputs = segments.map(segmentOutput);

    const inputs: string[] = [];
    const probes: ProbeResult[] = [];
    for (const [i, segment] of segments.entries()) {
      const output = outputs[i]!;
      const local = join(workDir, `seg-${String(i).padStart(3, "0")}.${localExtension(output.contentType, "mp4")}`);
      try {
        validateKey(output.s3Key);
        await storage.download(output.s3Key, local);
        const p = await probe(local, { signal });
        if (!p.video) throw new WorkInputError(`segment "${segment.id}": expected a video file but it has no video stream`);
        probes.push(p);
      } catch (error) {
        throw asInputError(error, `segment "${segment.id}"`);
      }
      inputs.push(local);
      ctx.progress(((i + 1) / segments.length) * DOWNLOAD_SHARE);
    }

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

    const key = outputKey(job.pipelineId, job.nodeId, job.jobId, "mp4");
    const { size } = await storage.putFile(key, mergedPath, { contentType: "video/mp4" });
    const workSeconds = (performance.now() - started) / 1000;
    const { probe: result, strategy } = merged;
    logger.info({ strategy, segments: segments.length, duration: result.durationSeconds, size, workSeconds }, "segments merged");

    const output: NodeOutput = {
      type: "video",
      s3Key: key,
      duration: round3(result.durationSeconds),
      size,
      width: result.video?.width,
      height: result.video?.height,
      videoCodec: result.video?.codec,
      audioCodec: result.audio?.codec,
      contentType: "video/mp4",
      strategy,
    };
    // Keys that are undefined would be dropped by JSON anyway; keep the stored output tidy.
    for (const k of Object.keys(output) as (keyof NodeOutput)[]) if (output[k] === undefined) delete output[k];
    return { output, cost: computeCost(merged.cpuSeconds, options.costPerCpuSecond) };
  };
}
