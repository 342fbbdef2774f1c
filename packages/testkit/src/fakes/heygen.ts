import type { IncomingMessage } from "node:http";
import { FakeProvider, jsonBody, type FakeOptions } from "./server";
import { makeFakeVideo } from "./media";

/**
 * HeyGen as documented (docs.heygen.com): POST /v2/video/generate -> { error: null, data: { video_id } };
 * GET /v1/video_status.get?video_id= -> { code: 100, data: { id, status: pending|processing|completed|failed,
 * video_url, duration, callback_id, error }, message }; GET /v3/videos?title= (list, title filter); errors
 * { error: { code, message } }; auth X-Api-Key. video_url points at this server's /files/<id>.mp4.
 */
export class FakeHeygen extends FakeProvider {
  private video = "";

  constructor(options: FakeOptions) {
    super(options);
    this.route("POST", /^\/v2\/video\/generate$/, "create", (_req, res, _url, raw) => {
      const body = jsonBody(raw);
      const input = (body.video_inputs as Array<{ character?: { avatar_id?: string }; voice?: { voice_id?: string; input_text?: string } }> | undefined)?.[0];
      if (!input?.character?.avatar_id || !input.voice?.voice_id || !input.voice.input_text) {
        return this.error(res, 400, "video_inputs[0] needs character.avatar_id, voice.voice_id and voice.input_text", "invalid_parameter");
      }
      const job = this.newJob(body, { title: body.title, callbackId: body.callback_id });
      this.json(res, 200, { error: null, data: { video_id: job.id } });
    });
    this.route("GET", /^\/v1\/video_status\.get$/, "status", (_req, res, url) => {
      const job = this.jobs.get(url.searchParams.get("video_id") ?? "");
      if (!job) return this.error(res, 404, "Video not found", "video_not_found");
      const state = this.advance(job);
      const data = {
        id: job.id,
        callback_id: job.extra.callbackId ?? null,
        status: state === "done" ? "completed" : state === "failed" ? "failed" : job.polls <= 1 ? "pending" : "processing",
        video_url: state === "done" ? `${this.url}/files/${job.id}.mp4?Expires=1999999999&Signature=fake` : null,
        duration: state === "done" ? 1 : null,
        error: state === "failed" ? { code: 40119, message: job.failReason, detail: job.failReason } : null,
        thumbnail_url: null,
      };
      this.json(res, 200, { code: 100, data, message: "Success" });
    });
    this.route("GET", /^\/v3\/videos$/, "lookup", (_req, res, url) => {
      const title = url.searchParams.get("title") ?? "";
      const data = [...this.jobs.values()]
        .filter((j) => typeof j.extra.title === "string" && j.extra.title.includes(title))
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

  protected async prepare() {
    this.video = await makeFakeVideo(this.dir, "avatar.mp4", { seconds: 1, width: 320, height: 180 });
  }

  protected errorBody(_status: number, message: string, code?: string) {
    return { error: { code: code ?? "invalid_parameter", message }, data: null };
  }

  protected authorized(req: IncomingMessage) {
    return req.headers["x-api-key"] === this.apiKey;
  }
}
