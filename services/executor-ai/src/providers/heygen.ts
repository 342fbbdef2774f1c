import { createProviderHttp, type ProviderHttpOptions } from "./http";
import type { JobPoll } from "./types";

/**
 * HeyGen, written against https://docs.heygen.com/reference/create-an-avatar-video-v2 (POST /v2/video/generate),
 * https://docs.heygen.com/reference/video-status (GET /v1/video_status.get) and
 * https://developers.heygen.com/reference/list-videos (GET /v3/videos?title=, used to find a video whose create
 * reply was lost). Auth: X-Api-Key. Errors: `{ error: { code, message } }`.
 */
export interface HeygenCreateVideo {
  avatarId: string;
  voiceId: string;
  script: string;
  /** Voice speed 0.5-1.5. */
  speed?: number;
  width: number;
  height: number;
  /** Our reference, put in the title (searchable) and callback_id (returned by the status call). */
  clientRef: string;
  title: string;
}

interface HeygenStatus {
  id?: string;
  status?: string;
  video_url?: string | null;
  duration?: number | null;
  callback_id?: string | null;
  error?: { code?: number | string; message?: string; detail?: string } | string | null;
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
      const { json } = await http.json({
        method: "POST",
        path: "/v2/video/generate",
        what: "create video",
        signal,
        body: {
          video_inputs: [
            {
              character: { type: "avatar", avatar_id: input.avatarId, avatar_style: "normal" },
              voice: { type: "text", input_text: input.script, voice_id: input.voiceId, ...(input.speed ? { speed: input.speed } : {}) },
            },
          ],
          dimension: { width: input.width, height: input.height },
          title: input.title,
          callback_id: input.clientRef,
        },
      });
      const id = (json as { data?: { video_id?: unknown } })?.data?.video_id;
      if (typeof id !== "string" || !VIDEO_ID.test(id)) throw new Error("HeyGen create video: the answer has no usable video_id");
      return { id };
    },

    async poll(videoId: string, signal?: AbortSignal): Promise<JobPoll> {
      const { json } = await http.json({ method: "GET", path: "/v1/video_status.get", query: { video_id: videoId }, what: "video status", signal });
      const data = ((json as { data?: HeygenStatus })?.data ?? {}) as HeygenStatus;
      switch (data.status) {
        case "completed":
          if (!data.video_url) throw new Error("HeyGen video status: completed without a video_url");
          return { state: "succeeded", url: data.video_url, durationSeconds: typeof data.duration === "number" ? data.duration : undefined };
        case "failed": {
          const e = data.error;
          const reason = typeof e === "string" ? e : [e?.message, e?.detail].filter(Boolean).join(": ") || "the render failed";
          return { state: "failed", reason };
        }
        default:
          // pending, waiting, processing (and states added later): keep polling.
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
