import { createProviderHttp, type ProviderHttpOptions } from "./http";
import type { JobPoll } from "./types";

/**
 * Google Veo 3 through the Gemini API, written against https://ai.google.dev/gemini-api/docs/video (REST tab)
 * and the official SDK (googleapis/js-genai: generateVideosParametersToMldev, Operations.getVideosOperation):
 * POST /v1beta/models/{model}:predictLongRunning with `x-goog-api-key` and
 * { instances: [{ prompt, image?: { bytesBase64Encoded, mimeType } }], parameters: { aspectRatio, durationSeconds,
 * negativePrompt } } -> a long-running operation { name }; GET /v1beta/{name} until `done`; then
 * response.generateVideoResponse.generatedSamples[0].video.uri, downloaded with the same key (it redirects to
 * a signed URL). Errors: `{ error: { code, message, status } }`. Operations of the Developer API have no cancel.
 */
export const VEO_DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com";

export interface VeoGenerate {
  model: string;
  prompt: string;
  negativePrompt?: string;
  aspectRatio: "16:9" | "9:16";
  durationSeconds: 4 | 6 | 8;
  image?: { base64: string; mimeType: string };
}

export function describeGoogleError(body: unknown): { message?: string; code?: string } {
  const e = (body as { error?: { message?: string; status?: string; code?: number } })?.error;
  if (e && typeof e === "object") return { message: e.message, code: e.status ?? e.code?.toString() };
  return {};
}

/**
 * A Google 429 (google.rpc.Status, https://cloud.google.com/apis/design/errors and the Gemini API's rate-limit page,
 * read 2026-12-07): no Retry-After header; `details` may carry `google.rpc.RetryInfo` { retryDelay: "37s" } and
 * `google.rpc.QuotaFailure` { violations: [{ quotaId, quotaMetric }] }. A per-day quota does not come back with a
 * short wait.
 */
export function describeGoogleRateLimit(body: unknown): { delayMs?: number; exhausted?: string } {
  const details = (body as { error?: { details?: unknown } })?.error?.details;
  if (!Array.isArray(details)) return {};
  let delayMs: number | undefined;
  for (const d of details as Array<Record<string, unknown>>) {
    const type = String(d?.["@type"] ?? "");
    if (type.endsWith("google.rpc.QuotaFailure")) {
      const violations = Array.isArray(d.violations) ? (d.violations as Array<{ quotaId?: unknown; quotaMetric?: unknown }>) : [];
      const daily = violations.find((v) => /per_?day|perday/i.test(String(v.quotaId ?? "")));
      if (daily) return { exhausted: `the per-day quota ${String(daily.quotaId)} is spent; it resets at midnight Pacific time` };
    }
    if (type.endsWith("google.rpc.RetryInfo")) {
      const m = /^(\d+(?:\.\d+)?)s$/.exec(String(d.retryDelay ?? ""));
      if (m) delayMs = Math.ceil(Number(m[1]) * 1000);
    }
  }
  return { delayMs };
}

const MODEL = /^[a-z0-9][a-z0-9.-]{0,80}$/;
/** Operation names are path segments we call back: only the shapes the API produces. */
const OPERATION = /^(models\/[a-z0-9][a-z0-9.-]{0,80}\/)?operations\/[A-Za-z0-9_-]{1,200}$/;

export function createVeoClient(options: Omit<ProviderHttpOptions, "provider" | "authHeaders" | "secrets" | "describeError"> & { apiKey: string }) {
  const http = createProviderHttp({
    ...options,
    provider: "veo3",
    authHeaders: { "x-goog-api-key": options.apiKey },
    secrets: [options.apiKey],
    describeError: describeGoogleError,
    describeRateLimit: describeGoogleRateLimit,
  });
  return {
    http,
    async generate(input: VeoGenerate, signal?: AbortSignal): Promise<{ id: string }> {
      if (!MODEL.test(input.model)) throw new Error(`not a Veo model id: ${input.model}`);
      const instance: Record<string, unknown> = { prompt: input.prompt };
      if (input.image) instance.image = { bytesBase64Encoded: input.image.base64, mimeType: input.image.mimeType };
      const parameters: Record<string, unknown> = { aspectRatio: input.aspectRatio, durationSeconds: input.durationSeconds };
      if (input.negativePrompt) parameters.negativePrompt = input.negativePrompt;
      const { json } = await http.json({
        method: "POST",
        path: `/v1beta/models/${input.model}:predictLongRunning`,
        what: "generate video",
        signal,
        body: { instances: [instance], parameters },
      });
      const name = (json as { name?: unknown })?.name;
      if (typeof name !== "string" || !OPERATION.test(name)) throw new Error("Veo generate video: the answer has no usable operation name");
      return { id: name };
    },

    async poll(operation: string, signal?: AbortSignal): Promise<JobPoll> {
      if (!OPERATION.test(operation)) throw new Error(`not a Veo operation name: ${operation}`);
      const { json } = await http.json({ method: "GET", path: `/v1beta/${operation}`, what: "get operation", signal });
      const op = (json ?? {}) as {
        done?: boolean;
        metadata?: { progressPercent?: number };
        error?: { message?: string; code?: number };
        response?: {
          generateVideoResponse?: {
            generatedSamples?: Array<{ video?: { uri?: string } }>;
            raiMediaFilteredCount?: number;
            raiMediaFilteredReasons?: string[];
          };
        };
      };
      if (!op.done) {
        const p = op.metadata?.progressPercent;
        return { state: "running", progress: typeof p === "number" ? p / 100 : undefined };
      }
      if (op.error) return { state: "failed", reason: op.error.message ?? `error ${op.error.code ?? "unknown"}` };
      const result = op.response?.generateVideoResponse;
      const uri = result?.generatedSamples?.[0]?.video?.uri;
      if (!uri) {
        const reasons = result?.raiMediaFilteredReasons?.join("; ");
        return { state: "failed", reason: reasons ? `filtered by the safety policy: ${reasons}` : "the operation finished without a video" };
      }
      return { state: "succeeded", url: uri };
    },
  };
}
export type VeoClient = ReturnType<typeof createVeoClient>;
