import { join } from "node:path";
import { LambdaClient } from "@aws-sdk/client-lambda";
import { createCodeRenderer } from "@vp/code-animation/render";
import { prepareWorkRoot } from "@vp/media";
import { runExecutor } from "@vp/runtime";
import { parseCidrList } from "@vp/url-guard";
import { loadEnv } from "./env";
import { createAssetWork } from "./handlers/asset";
import { createCaptionsWork } from "./handlers/captions";
import type { FfmpegWorkOptions } from "./handlers/common";
import { createComposeVideoWork } from "./handlers/compose-video";
import { createLambdaInvoker } from "./handlers/lambda";
import { createMergeVideosWork } from "./handlers/merge-videos";
import { createMixAudioWork } from "./handlers/mix-audio";
import { createRenderCodeWork } from "./handlers/render-code";

const env = loadEnv();

const lambda =
  env.FFMPEG_BACKEND === "lambda"
    ? createLambdaInvoker({
        // One attempt per job delivery: a retry re-runs paid work, so JetStream's redelivery decides it.
        client: new LambdaClient({ region: env.LAMBDA_REGION ?? process.env.AWS_REGION ?? "us-east-1", endpoint: env.LAMBDA_ENDPOINT, maxAttempts: 1 }),
        functionNames: {
          "video-merger": env.LAMBDA_FUNCTION_VIDEO_MERGER,
          "audio-mixer": env.LAMBDA_FUNCTION_AUDIO_MIXER,
          "video-composer": env.LAMBDA_FUNCTION_VIDEO_COMPOSER,
        },
      })
    : undefined;
const ffmpeg: FfmpegWorkOptions = {
  ffmpegTimeoutMs: env.FFMPEG_TIMEOUT_MS,
  costPerCpuSecond: env.FFMPEG_COST_PER_CPU_SECOND_USD,
  defaultBackend: env.FFMPEG_BACKEND,
  lambda,
  lambdaLocalFallbackAfter: env.LAMBDA_LOCAL_FALLBACK_AFTER,
  lambdaMaxInputBytes: env.LAMBDA_MAX_INPUT_BYTES,
  lambdaMaxInputSeconds: env.LAMBDA_MAX_INPUT_SECONDS,
};
await runExecutor({
  service: "executor-ffmpeg",
  env,
  // ffmpeg children of a previous process that was killed are still ours to stop.
  beforeStart: async ({ logger }) => {
    // Refuses a work root another live executor owns, then reaps what a killed predecessor left.
    await prepareWorkRoot(env.WORK_ROOT, "executor-ffmpeg", { logger });
  },
  // The node types it serves are the catalog's for executor-ffmpeg; each needs its handler here.
  works: ({ logger }) => {
    // One renderer for the whole process: the composition is bundled once (on the first render-code job,
    // or now when asked) into WORK_ROOT, so a killed process's bundle is reaped with its job directories.
    const renderer = createCodeRenderer({
      browserExecutable: env.CHROMIUM_PATH,
      concurrency: env.REMOTION_CONCURRENCY,
      bundleRoot: join(env.WORK_ROOT, "_code-animation"),
      prebuiltBundle: env.CODE_ANIMATION_BUNDLE,
      logger,
    });
    if (env.RENDER_CODE_PREPARE_AT_START) {
      renderer.prepare().catch((error: unknown) => logger.error({ err: error }, "bundling the code animation failed; the first render-code job retries"));
    }
    return {
      asset: createAssetWork({
        urls: { allow: parseCidrList(env.ASSET_URL_ALLOW_CIDRS), maxBytes: env.ASSET_URL_MAX_BYTES, timeoutMs: env.ASSET_URL_TIMEOUT_MS },
      }),
      "merge-videos": createMergeVideosWork(ffmpeg),
      "mix-audio": createMixAudioWork(ffmpeg),
      "compose-video": createComposeVideoWork(ffmpeg),
      "render-code": createRenderCodeWork({ renderer, costPerCpuSecond: env.FFMPEG_COST_PER_CPU_SECOND_USD }),
      captions: createCaptionsWork(ffmpeg),
    };
  },
});
