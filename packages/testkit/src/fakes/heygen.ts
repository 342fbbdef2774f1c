import type { IncomingMessage } from "node:http";
import { FakeProvider, jsonBody, type FakeOptions } from "./server";
import { makeFakeVideo } from "./media";

const RESOLUTIONS = ["720p", "1080p", "4k"];
const ASPECT_RATIOS = ["16:9", "9:16", "4:5", "5:4", "1:1", "auto"];

/**
 * HeyGen API v3 as documented (shapes from heygen-com/heygen-cli gen/video.go, read 2026-12-07):
 * - POST /v3/videos { type: "avatar", avatar_id, script, voice_id, resolution, aspect_ratio, voice_settings, title,
 *   callback_id } -> { data: { video_id, status: "waiting" } }. An Idempotency-Key header makes the create
 *   replayable for 24 h: the same key answers the first answer again (no second video), 409 while the first request
 *   with that key has not been answered yet.
 * - GET /v3/videos/{video_id} -> { data: { id, title, status: pending|processing|completed|failed, video_url,
 *   duration, failure_code, failure_message, created_at } }.
 * - GET /v3/videos?title= (list, title substring filter) -> { data: [...], has_more, next_token }.
 * Errors { error: { code, message } }; auth X-Api-Key. video_url points at this server's /files/<id>.mp4.
 */
export class FakeHeygen extends FakeProvider {
  private video = "";
  /** Idempotency keys seen: the video id once the create was processed, undefined while it is. */
  private readonly keys = new Map<string, string | undefined>();
  /** While true, new videos stay out of the list (HeyGen's list is not read-your-writes). */
  listLags = false;
  private readonly unlisted = new Set<string>();

  constructor(options: FakeOptions) {
    super(options);
    this.route("POST", /^\/v3\/videos$/, "create", (req, res, _url, raw) => {
      const key = req.headers["idempotency-key"];
      if (typeof key === "string" && this.keys.has(key)) {
        const id = this.keys.get(key);
        if (id === undefined) return this.error(res, 409, "A request with this Idempotency-Key is still being processed", "conflict");
        return this.json(res, 200, { data: { video_id: id, status: "waiting", output_format: "mp4" } });
      }
      const body = jsonBody(raw);
      if (body.type !== "avatar") return this.error(res, 400, "type: must be one of avatar, image, cinematic_avatar, studio", "invalid_parameter");
      if (typeof body.avatar_id !== "string" || !body.avatar_id) return this.error(res, 400, "avatar_id: field required", "invalid_parameter");
      if (typeof body.script !== "string" || !body.script.trim()) return this.error(res, 400, "script or audio_url is required", "invalid_parameter");
      if (body.resolution !== undefined && !RESOLUTIONS.includes(body.resolution as string))
        return this.error(res, 400, `resolution: must be one of ${RESOLUTIONS.join(", ")}`, "invalid_parameter");
      if (body.aspect_ratio !== undefined && !ASPECT_RATIOS.includes(body.aspect_ratio as string))
        return this.error(res, 400, `aspect_ratio: must be one of ${ASPECT_RATIOS.join(", ")}`, "invalid_parameter");
      if ("width" in body || "height" in body || "dimension" in body || "video_inputs" in body)
        return this.error(res, 400, "unknown field: v3 takes resolution and aspect_ratio", "invalid_parameter");
      if (typeof key === "string") this.keys.set(key, undefined);
      const job = this.newJob(body, { title: body.title, callbackId: body.callback_id, idempotencyKey: key });
      if (typeof key === "string") this.keys.set(key, job.id);
      if (this.listLags) this.unlisted.add(job.id);
      this.json(res, 200, { data: { video_id: job.id, status: "waiting", output_format: "mp4" } });
    });
    this.route("GET", /^\/v3\/videos\/[\w-]+$/, "status", (_req, res, url) => {
      const job = this.jobs.get(url.pathname.split("/").pop() ?? "");
      if (!job) return this.error(res, 404, "Video not found", "video_not_found");
      const state = this.advance(job);
      const data = {
        id: job.id,
        title: job.extra.title ?? null,
        status: state === "done" ? "completed" : state === "failed" ? "failed" : job.polls <= 1 ? "pending" : "processing",
        video_url: state === "done" ? `${this.url}/files/${job.id}.mp4?Expires=1999999999&Signature=fake` : null,
        duration: state === "done" ? 1 : null,
        failure_code: state === "failed" ? "render_failed" : null,
        failure_message: state === "failed" ? job.failReason : null,
        created_at: Math.floor(job.createdAt / 1000),
      };
      this.json(res, 200, { data });
    });
    this.route("GET", /^\/v3\/videos$/, "lookup", (_req, res, url) => {
      const title = url.searchParams.get("title") ?? "";
      const data = [...this.jobs.values()]
        .filter((j) => !this.unlisted.has(j.id) && typeof j.extra.title === "string" && j.extra.title.includes(title))
        .map((j) => ({ id: j.id, title: j.extra.title, status: "processing", created_at: Math.floor(j.createdAt / 1000) }));
      this.json(res, 200, { data, has_more: false, next_token: null });
    });
    this.route("GET", /^\/files\/[\w-]+\.mp4$/, undefined, async (req, res, url) => {
      if (req.headers["x-api-key"]) this.keyLeaks += 1;
      const job = this.jobs.get(url.pathname.slice("/files/".length, -".mp4".length));
      if (!job) return this.error(res, 404, "no such file");
      await this.sendFile(res, this.video, "video/mp4", job);
    });
  }

  /** A create with this Idempotency-Key is being processed: a repeat gets 409 until `answer` (or never). */
  markInFlight(key: string): this {
    this.keys.set(key, undefined);
    return this;
  }

  override reset(): void {
    super.reset();
    this.keys.clear();
    this.unlisted.clear();
    this.listLags = false;
  }

  protected async prepare() {
    this.video = await makeFakeVideo(this.dir, "avatar.mp4", { seconds: 1, width: 320, height: 180 });
  }

  protected errorBody(_status: number, message: string, code?: string) {
    return { error: { code: code ?? "invalid_parameter", message } };
  }

  protected authorized(req: IncomingMessage) {
    return req.headers["x-api-key"] === this.apiKey;
  }
}
