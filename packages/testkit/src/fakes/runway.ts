import type { IncomingMessage } from "node:http";
import { FakeProvider, jsonBody } from "./server";
import { makeFakeVideo } from "./media";

/**
 * Runway as documented (docs.dev.runwayml.com, runwayml/sdk-node): POST /v1/image_to_video and
 * /v1/text_to_video with Authorization: Bearer and X-Runway-Version: 2024-11-06 -> { id }; GET /v1/tasks/{id}
 * -> { id, status: PENDING|THROTTLED|RUNNING|SUCCEEDED|FAILED|CANCELLED, progress, output: [url], failure, failureCode };
 * DELETE /v1/tasks/{id} cancels (204). Errors { error }. Output URLs point at this server's /files/<id>.mp4.
 */
export const FAKE_RUNWAY_VERSION = "2024-11-06";

export class FakeRunway extends FakeProvider {
  /** While true, tasks not yet done answer THROTTLED: queued because the account's concurrency is full (not a failure). */
  throttled = false;
  private video = "";
  cancels = 0;

  constructor(options: ConstructorParameters<typeof FakeProvider>[0]) {
    super(options);
    const create = (kind: "image" | "text") => (_req: IncomingMessage, res: import("node:http").ServerResponse, _url: URL, raw: Buffer) => {
      const body = jsonBody(raw);
      if (typeof body.model !== "string" || typeof body.ratio !== "string") return this.error(res, 400, "model and ratio are required");
      if (kind === "image" && (typeof body.promptImage !== "string" || !/^(https:|data:image\/)/.test(body.promptImage))) {
        return this.error(res, 400, "promptImage must be an HTTPS URL or a data URI");
      }
      if (kind === "text" && typeof body.promptText !== "string") return this.error(res, 400, "promptText is required");
      const job = this.newJob(body, { kind });
      this.json(res, 200, { id: job.id });
    };
    this.route("POST", /^\/v1\/image_to_video$/, "create", create("image"));
    this.route("POST", /^\/v1\/text_to_video$/, "create", create("text"));
    this.route("GET", /^\/v1\/tasks\/[\w-]+$/, "status", (_req, res, url) => {
      const job = this.jobs.get(url.pathname.split("/").pop()!);
      if (!job) return this.error(res, 404, "Task not found");
      const base = { id: job.id, createdAt: new Date(job.createdAt).toISOString() };
      // A throttled task waits in Runway's queue: it does not advance.
      if (this.throttled && !job.cancelled) return this.json(res, 200, { ...base, status: "THROTTLED" });
      const state = this.advance(job);
      if (state === "cancelled") return this.json(res, 200, { ...base, status: "CANCELLED" });
      if (state === "running") return this.json(res, 200, job.polls <= 1 ? { ...base, status: "PENDING" } : { ...base, status: "RUNNING", progress: 0.5 });
      if (state === "failed") return this.json(res, 200, { ...base, status: "FAILED", failure: job.failReason, failureCode: "INTERNAL.BAD_OUTPUT" });
      this.json(res, 200, { ...base, status: "SUCCEEDED", output: [`${this.url}/files/${job.id}.mp4?_jwt=fake`] });
    });
    this.route("DELETE", /^\/v1\/tasks\/[\w-]+$/, "cancel", (_req, res, url) => {
      const job = this.jobs.get(url.pathname.split("/").pop()!);
      if (!job) return this.error(res, 404, "Task not found");
      job.cancelled = true;
      if (!job.downloaded) {
        job.downloaded = true;
        this.inFlight -= 1;
      }
      this.cancels += 1;
      res.writeHead(204);
      res.end();
    });
    this.route("GET", /^\/files\/[\w-]+\.mp4$/, undefined, async (req, res, url) => {
      if (req.headers.authorization) this.keyLeaks += 1;
      const job = this.jobs.get(url.pathname.slice("/files/".length, -".mp4".length));
      if (!job) return this.error(res, 404, "no such file");
      await this.sendFile(res, this.video, "video/mp4", job);
    });
  }

  override reset(): void {
    super.reset();
    this.throttled = false;
    this.cancels = 0;
  }

  protected async prepare() {
    this.video = await makeFakeVideo(this.dir, "runway.mp4", { seconds: 2, width: 320, height: 180, color: "#9b2226" });
  }

  protected errorBody(_status: number, message: string) {
    return { error: message };
  }

  protected authorized(req: IncomingMessage) {
    return req.headers.authorization === `Bearer ${this.apiKey}` && req.headers["x-runway-version"] === FAKE_RUNWAY_VERSION;
  }
}
