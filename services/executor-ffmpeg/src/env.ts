import { z } from "zod";
import { executorEnvSchema, optionalPathSetting, pathSetting } from "@vp/runtime";
import { parseCidrList } from "@vp/url-guard";

const flag = z
  .enum(["true", "false", "1", "0"])
  .default("false")
  .transform((v) => v === "true" || v === "1");

export const Env = executorEnvSchema({ workRoot: ".data/work/executor-ffmpeg", healthPort: 3073 })
  .extend({
    /** Upper bound of one ffmpeg run. */
    FFMPEG_TIMEOUT_MS: z.coerce
      .number()
      .int()
      .min(1000)
      .default(30 * 60_000),
    /**
     * Where merge-videos, mix-audio and compose-video run when a node's config.provider does not say:
     * local (this process's ffmpeg) or lambda (the video-merger / audio-mixer / video-composer functions,
     * which read and write the same S3 bucket, so lambda needs STORAGE=s3).
     */
    FFMPEG_BACKEND: z.enum(["local", "lambda"]).default("local"),
    /** Dollars per CPU-second of local ffmpeg (and per second of a Remotion render); 0 reports local work as free. */
    FFMPEG_COST_PER_CPU_SECOND_USD: z.coerce.number().min(0).default(0),
    /** An endpoint for the Lambda API other than AWS's (a local test endpoint). */
    LAMBDA_ENDPOINT: z.string().url().optional(),
    /** Region of the functions; default AWS_REGION, else us-east-1. */
    LAMBDA_REGION: z.string().optional(),
    /** Deployed names or ARNs of the three functions. */
    LAMBDA_FUNCTION_VIDEO_MERGER: z.string().default("video-merger"),
    LAMBDA_FUNCTION_AUDIO_MIXER: z.string().default("audio-mixer"),
    LAMBDA_FUNCTION_VIDEO_COMPOSER: z.string().default("video-composer"),
    /**
     * From this attempt of a job on, a Lambda invocation that failed for a reason other than its inputs (the
     * function's timeout or memory, throttling) is followed by the work on this executor's ffmpeg. 0: never.
     */
    LAMBDA_LOCAL_FALLBACK_AFTER: z.coerce.number().int().min(0).default(0),
    /** Inputs larger than this in total (bytes) run locally: with the output they would not fit the function's /tmp. */
    LAMBDA_MAX_INPUT_BYTES: z.coerce
      .number()
      .int()
      .min(1)
      .default(4 * 1024 ** 3),
    /** Inputs longer than this in total (seconds) run locally: their work would not finish within the function's timeout. */
    LAMBDA_MAX_INPUT_SECONDS: z.coerce.number().min(1).default(3600),
    /** Chromium for render-code (Remotion's browserExecutable): Debian's package. Never downloaded. */
    CHROMIUM_PATH: pathSetting("/usr/bin/chromium"),
    /** Browser tabs one render uses for frames. */
    REMOTION_CONCURRENCY: z.coerce.number().int().min(1).default(1),
    /** Bundle the composition at start-up instead of on the first render-code job. */
    RENDER_CODE_PREPARE_AT_START: flag,
    /**
     * A directory with the composition already bundled (scripts/bundle-code-animation.mjs; the image sets it):
     * render-code serves it as is and never bundles at run time. Unset: bundled on the first job.
     */
    CODE_ANIMATION_BUNDLE: optionalPathSetting(),
    /**
     * URL assets: internal ranges the asset download may reach after all (comma-separated CIDRs or addresses,
     * e.g. an internal media server's 10.20.0.0/16). Empty (default): loopback, private, link-local (cloud
     * metadata), CGNAT, multicast, broadcast and reserved addresses are all refused.
     */
    ASSET_URL_ALLOW_CIDRS: z
      .string()
      .default("")
      .superRefine((value, ctx) => {
        try {
          parseCidrList(value);
        } catch (error) {
          ctx.addIssue({ code: "custom", message: (error as Error).message });
        }
      }),
    /** Largest URL asset downloaded, in bytes (default 2 GiB). */
    ASSET_URL_MAX_BYTES: z.coerce
      .number()
      .int()
      .min(1)
      .default(2 * 1024 ** 3),
    /** Upper bound of one URL asset download, redirects included (default 10 min). */
    ASSET_URL_TIMEOUT_MS: z.coerce
      .number()
      .int()
      .min(1000)
      .default(10 * 60_000),
  })
  .superRefine((env, ctx) => {
    if (env.FFMPEG_BACKEND === "lambda" && env.STORAGE !== "s3") {
      ctx.addIssue({ code: "custom", path: ["FFMPEG_BACKEND"], message: "FFMPEG_BACKEND=lambda needs STORAGE=s3: the functions read and write S3" });
    }
  });
export type Env = z.infer<typeof Env>;
export const loadEnv = (source: NodeJS.ProcessEnv = process.env): Env => Env.parse(source);
