import { heygenFrame } from "@vp/contracts";
import { ProviderRejectedError, RetryAfterError } from "../errors";
import { createProviderHttp, type ProviderHttpOptions } from "./http";
import type { JobPoll } from "./types";

/**
 * HeyGen API v3 (v1/v2 video endpoints retired on 2026-11-01, HeyGen's endpoint version comparison; shapes from
 * heygen-com/heygen-cli gen/video.go, read 2026-12-07):
 * - POST /v3/videos { type: "avatar", avatar_id, script, voice_id, title, resolution: 720p|1080p|4k,
 *   aspect_ratio: 16:9|9:16|4:5|5:4|1:1, voice_settings: { speed }, callback_id } -> { data: { video_id, status } },
 *   with an Idempotency-Key header: the same key within 24 h replays the first answer (no second video), and
 *   answers 409 while the first request with that key is still being processed;
 * - GET /v3/videos/{video_id} -> { data: { id, status: pending|processing|completed|failed, video_url, duration,
 *   failure_code, failure_message } };
 * - GET /v3/videos?title= (list with a title filter) -> { data: [{ id, title, status }], has_more, next_token }.
 * Auth: X-Api-Key. Errors: `{ error: { code, message } }`.
 */
export interface HeygenCreateVideo {
  avatarId: string;
  voiceId: string;
  script: string;
  /** Voice speed 0.5-1.5. */
  speed?: number;
  /** The node's frame; HeyGen renders at the nearest of its resolutions and aspect ratios (heygenFrame). */
  width: number;
  height: number;
  /** Our reference, per node job: the idempotency key, in the title (searchable) and the callback_id. */
  clientRef: string;
  title: string;
}

/** How long to wait before asking again when HeyGen is still processing the first create with our key. */
const IN_FLIGHT_RETRY_MS = 2000;

interface HeygenVideo {
  id?: string;
  status?: string;
  video_url?: string | null;
  duration?: number | null;
  failure_code?: string | null;
  failure_message?: string | null;
}

export const HEYGEN_DEFAULT_BASE_URL = "https://api.heygen.com";

export function describeHeygenError(body: unknown): { message?: string; code?: string } {
  const b = body as { error?: { message?: string; code?: string | number } | string; message?: string } | undefined;
  if (b && typeof b.error === "object" && b.error) return { message: b.error.message, code: b.error.code?.toString() };
  if (b && typeof b.error === "string") return { message: b.error };
  if (b && typeof b.message === "string") return { message: b.message };
  return {};
}

const VIDEO_ID = /^[A-Za-z0-9_-]{1,128}$/;

export function createHeygenClient(options: Omit<ProviderHttpOptions, "provider" | "authHeaders" | "secrets" | "describeError"> & { apiKey: string }) {
  const http = createProviderHttp({
    ...options,
    provider: "heygen",
    authHeaders: { "x-api-key": options.apiKey },
    secrets: [options.apiKey],
    describeError: describeHeygenError,
  });

  return {
    http,
    async createVideo(input: HeygenCreateVideo, signal?: AbortSignal): Promise<{ id: string }> {
      const { resolution, aspectRatio } = heygenFrame(input.width, input.height);
      let answer;
      try {
        answer = await http.json({
          method: "POST",
          path: "/v3/videos",
          what: "create video",
          signal,
          headers: { "idempotency-key": input.clientRef },
          body: {
            type: "avatar",
            avatar_id: input.avatarId,
            script: input.script,
            voice_id: input.voiceId,
            ...(input.speed ? { voice_settings: { speed: input.speed } } : {}),
            resolution,
            aspect_ratio: aspectRatio,
            title: input.title,
            callback_id: input.clientRef,
          },
        });
      } catch (error) {
        // An earlier create with this key is still being processed: its answer comes on a later ask, not a second video.
        if (error instanceof ProviderRejectedError && error.status === 409) {
          throw new RetryAfterError(IN_FLIGHT_RETRY_MS, `HeyGen is still processing an earlier create request of this job (${error.message}); asking again`);
        }
        throw error;
      }
      const id = (answer.json as { data?: { video_id?: unknown } })?.data?.video_id;
      if (typeof id !== "string" || !VIDEO_ID.test(id)) throw new Error("HeyGen create video: the answer has no usable video_id");
      return { id };
    },

    async poll(videoId: string, signal?: AbortSignal): Promise<JobPoll> {
      if (!VIDEO_ID.test(videoId)) throw new Error(`HeyGen video id ${JSON.stringify(videoId)} is not an id HeyGen issues`);
      const { json } = await http.json({ method: "GET", path: `/v3/videos/${videoId}`, what: "video status", signal });
      const data = ((json as { data?: HeygenVideo })?.data ?? {}) as HeygenVideo;
      switch (data.status) {
        case "completed":
          if (!data.video_url) throw new Error("HeyGen video status: completed without a video_url");
          return { state: "succeeded", url: data.video_url, durationSeconds: typeof data.duration === "number" ? data.duration : undefined };
        case "failed": {
          const reason = [data.failure_code, data.failure_message].filter(Boolean).join(": ") || "the render failed";
          return { state: "failed", reason };
        }
        default:
          // pending, processing (and states added later): keep polling.
          return { state: "running" };
      }
    },

    /** The video created with `clientRef` in its title, if HeyGen has one (a create whose reply was lost). */
    async findByClientRef(clientRef: string, signal?: AbortSignal): Promise<string | undefined> {
      const { json } = await http.json({ method: "GET", path: "/v3/videos", query: { title: clientRef, limit: "10" }, what: "list videos", signal });
      const videos = ((json as { data?: Array<{ id?: unknown; title?: unknown }> })?.data ?? []).filter(
        (v) => typeof v.id === "string" && VIDEO_ID.test(v.id) && typeof v.title === "string" && v.title.includes(clientRef),
      );
      return videos[0]?.id as string | undefined;
    },
  };
}
export type HeygenClient = ReturnType<typeof createHeygenClient>;

export { heygenFrame };
