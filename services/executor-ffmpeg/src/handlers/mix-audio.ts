import { join } from "node:path";
import { MixAudioConfig } from "@vp/contracts";
import { computeCost, mixAudio } from "@vp/media";
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
import { asInputError } from "./errors";
import type { WorkFunction } from "./types";

const DOWNLOAD_SHARE = 10;
const MIX_SHARE = 85;

/**
 * mix-audio: replaces the `video` input's audio with the `audio` input (or lays it over the original at a
 * gain), starting at `startSeconds` with optional fades, the video stream copied and the audio encoded once;
 * pad or trim decides the length. Runs here or
 * in the audio-mixer Lambda. The inputs' media contract is checked before any work: a video where the
 * audio belongs, an audio file where the video belongs, fail the node at once with that reason.
 */
export function createMixAudioWork(options: FfmpegWorkOptions = {}): WorkFunction {
  return async (ctx) => {
    const { job, node, storage, workDir, signal, logger } = ctx;
    const config = parseConfig(MixAudioConfig, "mix-audio", node.config);
    const [videoNode] = ctx.inputs.video ?? [];
    const [audioNode] = ctx.inputs.audio ?? [];
    const videoOut = requireMediaInput("video", videoNode, "video");
    const audioOut = requireMediaInput("audio", audioNode, "audio");
    const backend = chooseBackend("mix-audio", config.provider, options, { ctx, inputs: [videoOut, audioOut] });
    const key = jobOutputKey(ctx, "mp4");

    if (backend === "lambda") {
      try {
        const stop = estimateProgress(ctx, (videoOut.duration ?? 10) / 8);
        try {
          const result = await invokeOnce(ctx, options.lambda!, "audio-mixer", {
            video_key: videoOut.s3Key,
            audio_key: audioOut.s3Key,
            output_key: key,
            config,
            input_facts: { [videoOut.s3Key]: factsOfOutput(videoOut), [audioOut.s3Key]: factsOfOutput(audioOut) },
          });
          logger.info({ backend, duration: result.duration, size: result.size, cost: result.cost }, "audio mixed");
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

    const [video, audio] = await Promise.all([
      fetchInput(ctx, { slot: "video", node: videoNode!, output: videoOut, name: "video", kind: "video" }),
      fetchInput(ctx, { slot: "audio", node: audioNode!, output: audioOut, name: "audio", kind: "audio" }),
    ]);
    ctx.progress(DOWNLOAD_SHARE);
    const mixedPath = join(workDir, "output.mp4");
    let mixed;
    try {
      mixed = await mixAudio({
        video: video.path,
        audio: audio.path,
        probes: { video: video.probe, audio: audio.probe },
        output: mixedPath,
        workDir,
        lengthMismatch: config.lengthMismatch,
        mode: config.mode,
        originalGain: config.originalGain,
        startSeconds: config.startSeconds,
        fadeInSeconds: config.fadeInSeconds,
        fadeOutSeconds: config.fadeOutSeconds,
        signal,
        timeoutMs: options.ffmpegTimeoutMs,
        onProgress: (percent) => ctx.progress(DOWNLOAD_SHARE + (percent * MIX_SHARE) / 100),
        logger,
      });
    } catch (error) {
      throw asInputError(error, "ffmpeg could not mix the audio");
    }
    const { size } = await storage.putFile(key, mixedPath, { contentType: "video/mp4" });
    logger.info({ backend, duration: mixed.probe.durationSeconds, size, cpuSeconds: mixed.cpuSeconds, videoCopied: mixed.videoCopied }, "audio mixed");
    return { output: outputOfProbe(key, size, mixed.probe), cost: computeCost(mixed.cpuSeconds, options.costPerCpuSecond) };
  };
}
