import { join } from "node:path";
import { ComposeVideoConfig } from "@vp/contracts";
import { computeCost, composeVideo } from "@vp/media";
import { jobOutputKey } from "@vp/runtime";
import { invokeOnce } from "./lambda-invocation";
import {
  chooseBackend,
  estimateProgress,
  factsOfOutput,
  fetchInput,
  outputOfProbe,
  parseConfig,
  requireMediaInput,
  videoOutput,
  type FfmpegWorkOptions,
  fallsBackToLocal,
} from "./common";
import { asInputError, WorkInputError } from "./errors";
import type { WorkFunction } from "./types";

const DOWNLOAD_SHARE = 10;
const COMPOSE_SHARE = 85;

/**
 * compose-video: lays the `overlays` inputs over the `background` input (picture in picture), each placed
 * by its entry in config.overlays (corner preset or x/y, size as a fraction of the width, start offset,
 * rounded corners, border); size, rate and duration follow the background. Runs here or in the
 * video-composer Lambda.
 */
export function createComposeVideoWork(options: FfmpegWorkOptions = {}): WorkFunction {
  return async (ctx) => {
    const { job, node, storage, workDir, signal, logger } = ctx;
    const config = parseConfig(ComposeVideoConfig, "compose-video", node.config);
    const [backgroundNode] = ctx.inputs.background ?? [];
    const overlayNodes = ctx.inputs.overlays ?? [];
    const backgroundOut = requireMediaInput("background", backgroundNode, "video");
    if (overlayNodes.length === 0) throw new WorkInputError("compose-video has no overlay: connect at least one video to overlays");
    const overlayOuts = overlayNodes.map((n) => requireMediaInput("overlays", n, "video"));
    if ((config.overlays?.length ?? 0) > overlayNodes.length) {
      throw new WorkInputError(`config.overlays describes ${config.overlays!.length} overlays, but only ${overlayNodes.length} are connected`);
    }
    const backend = chooseBackend("compose-video", config.provider, options, { ctx, inputs: [backgroundOut, ...overlayOuts] });
    const key = jobOutputKey(ctx, "mp4");

    if (backend === "lambda") {
      try {
        const stop = estimateProgress(ctx, backgroundOut.duration ?? 10);
        try {
          const result = await invokeOnce(ctx, options.lambda!, "video-composer", {
            background_key: backgroundOut.s3Key,
            overlay_keys: overlayOuts.map((o) => o.s3Key),
            output_key: key,
            config,
            input_facts: Object.fromEntries([backgroundOut, ...overlayOuts].map((o) => [o.s3Key, factsOfOutput(o)])),
          });
          logger.info({ backend, duration: result.duration, size: result.size, cost: result.cost }, "video composed");
          const output = videoOutput(result.s3_key, result.size, {
            ...result.facts,
            duration: result.duration,
            width: result.width,
            height: result.height,
            videoCodec: result.video_codec,
            audioCodec: result.audio_codec,
          });
          return { output, cost: result.cost };
        } finally {
          stop();
        }
      } catch (error) {
        // A function that keeps failing for reasons other than its inputs: this attempt runs here instead.
        if (!fallsBackToLocal(error, ctx, options)) throw error;
      }
    }

    const [background, ...overlays] = await Promise.all([
      fetchInput(ctx, { slot: "background", node: backgroundNode!, output: backgroundOut, name: "background", kind: "video" }),
      ...overlayNodes.map((n, i) =>
        fetchInput(ctx, { slot: "overlays", node: n, output: overlayOuts[i]!, name: `overlay-${String(i).padStart(3, "0")}`, kind: "video" }),
      ),
    ]);
    ctx.progress(DOWNLOAD_SHARE);
    const composedPath = join(workDir, "output.mp4");
    let composed;
    try {
      composed = await composeVideo({
        background: background!.path,
        overlays: overlays.map((o) => o.path),
        probes: { background: background!.probe, overlays: overlays.map((o) => o.probe) },
        specs: config.overlays,
        audio: config.audio,
        output: composedPath,
        workDir,
        signal,
        timeoutMs: options.ffmpegTimeoutMs,
        onProgress: (percent) => ctx.progress(DOWNLOAD_SHARE + (percent * COMPOSE_SHARE) / 100),
        logger,
      });
    } catch (error) {
      throw asInputError(error, "ffmpeg could not compose the video");
    }
    const { size } = await storage.putFile(key, composedPath, { contentType: "video/mp4" });
    logger.info({ backend, overlays: overlays.length, duration: composed.probe.durationSeconds, size, cpuSeconds: composed.cpuSeconds }, "video composed");
    return { output: outputOfProbe(key, size, composed.probe), cost: computeCost(composed.cpuSeconds, options.costPerCpuSecond) };
  };
}
