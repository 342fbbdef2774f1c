import { z } from "zod";
import { executorEnvSchema, optionalPathSetting } from "@vp/runtime";
import { ELEVENLABS_DEFAULT_BASE_URL } from "./providers/elevenlabs";
import { HEYGEN_DEFAULT_BASE_URL } from "./providers/heygen";
import { RUNWAY_DEFAULT_BASE_URL } from "./providers/runway";
import { VEO_DEFAULT_BASE_URL } from "./providers/veo";

/** An empty variable counts as not configured. */
const optionalKey = z.preprocess((v) => (typeof v === "string" && v.trim() === "" ? undefined : v), z.string().trim().min(1).optional());
const baseUrl = (fallback: string) => z.url({ protocol: /^https?$/ }).default(fallback);

export const Env = executorEnvSchema({ workRoot: ".data/work/executor-ai", healthPort: 3074 }).extend({
  /** Provider API keys. A node naming a provider whose key is missing fails with "<NAME>_API_KEY is not configured". */
  HEYGEN_API_KEY: optionalKey,
  ELEVENLABS_API_KEY: optionalKey,
  /** Veo 3 through the Gemini API; VEO_API_KEY is accepted as an alias. */
  GEMINI_API_KEY: optionalKey,
  VEO_API_KEY: optionalKey,
  RUNWAY_API_KEY: optionalKey,
  /** Base URLs (tests point them at local fakes). Their origins are trusted for downloads (http/loopback allowed). */
  HEYGEN_BASE_URL: baseUrl(HEYGEN_DEFAULT_BASE_URL),
  ELEVENLABS_BASE_URL: baseUrl(ELEVENLABS_DEFAULT_BASE_URL),
  VEO_BASE_URL: baseUrl(VEO_DEFAULT_BASE_URL),
  RUNWAY_BASE_URL: baseUrl(RUNWAY_DEFAULT_BASE_URL),
  /**
   * One provider HTTP call may stall this long (no answer / no bytes); must stay below JOB_ACK_WAIT_MS.
   * Default: two thirds of the ack wait, at most 20 s.
   */
  PROVIDER_HTTP_TIMEOUT_MS: z.coerce.number().int().min(100).optional(),
  /** In-process retries of a 5xx answer or a refused connection, with backoff. */
  PROVIDER_HTTP_RETRIES: z.coerce.number().int().min(0).max(10).default(2),
  /** Time between two status calls of a provider job. */
  PROVIDER_POLL_INTERVAL_MS: z.coerce.number().int().min(10).default(5_000),
  /** A provider job still running after this long is cancelled (where the provider can) and the node fails. */
  PROVIDER_MAX_WAIT_MS: z.coerce
    .number()
    .int()
    .min(1_000)
    .default(30 * 60_000),
  /** Delay of a 429 answer without Retry-After. */
  PROVIDER_DEFAULT_RETRY_AFTER_MS: z.coerce.number().int().min(0).default(30_000),
  /** A job the provider keeps telling to wait (429s) for longer than this fails its node with the reason (a spent quota). */
  PROVIDER_RATE_LIMIT_MAX_WAIT_MS: z.coerce
    .number()
    .int()
    .min(1000)
    .default(60 * 60_000),
  /** Largest provider result accepted. */
  PROVIDER_MAX_DOWNLOAD_BYTES: z.coerce
    .number()
    .int()
    .min(1024)
    .default(2 * 1024 ** 3),
  /** JSON file replacing sections of the price table (services/executor-ai/src/pricing.ts). */
  PRICE_TABLE_FILE: optionalPathSetting(),
  /** TrueType font for the local presenter cards and animations (default: DejaVu/Liberation if installed). */
  LOCAL_FONT_FILE: optionalPathSetting(),
  /** Upper bound of one local render (espeak-ng + ffmpeg). */
  LOCAL_RENDER_TIMEOUT_MS: z.coerce
    .number()
    .int()
    .min(1000)
    .default(10 * 60_000),
});
export type Env = Omit<z.infer<typeof Env>, "PROVIDER_HTTP_TIMEOUT_MS"> & { PROVIDER_HTTP_TIMEOUT_MS: number };

/** Parses the environment; the provider timeout defaults from, and must stay below, the job ack wait. */
export function loadEnv(source: NodeJS.ProcessEnv = process.env): Env {
  const env = Env.parse(source);
  const timeout = env.PROVIDER_HTTP_TIMEOUT_MS ?? Math.min(20_000, Math.floor((env.JOB_ACK_WAIT_MS * 2) / 3));
  if (timeout >= env.JOB_ACK_WAIT_MS) {
    throw new Error(`PROVIDER_HTTP_TIMEOUT_MS (${timeout}) must be shorter than JOB_ACK_WAIT_MS (${env.JOB_ACK_WAIT_MS})`);
  }
  return { ...env, PROVIDER_HTTP_TIMEOUT_MS: timeout };
}
