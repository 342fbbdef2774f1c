import type { IncomingMessage } from "node:http";
import { FakeProvider, jsonBody } from "./server";
import { makeFakeVideo } from "./media";

/**
 * Runway as documented (docs.dev.runwayml.com, runwayml/sdk-node): POST /v1/image_to_video and
 * /v1/text_to_video with Authorization: Bearer and X-Runway-Version: 2024-11-06 -> { id }; GET /v1/tasks/{id}
 * -> { id, status: PENDING|THROTTLED|RUNNING|SUCCEEDED|FAILED|CANCELLED, progress, output: [url], failure, failureCode };
 * DELETE /v1/tasks/{id} cancels (204). Errors { error }; a body Runway refuses is a 400 { error: "Validation of body
 * failed", issues: [{ code, message, path }], docUrl }. Output URLs point at this server's /files/<id>.mp4.
 */
export const FAKE_RUNWAY_VERSION = "2024-11-06";

const twoToTen = { min: 2, max: 10 };
/**
 * The models each endpoint takes and the durations each renders, as Runway checks them (@runwayml/sdk 4.20.1 types;
 * gen4_turbo 2-10 from runwayml/sdk-node 0df86ce; read 2026-12-07). Kept apart from @vp/contracts on purpose: the
 * fake stands for Runway, so a wrong table in the product fails against it.
 */
const MODELS: Record<"image" | "text", Record<string, { durations: { min: number; max: number } | number[]; required?: boolean }>> = {
  image: {
    "gen4.5": { durations: twoToTen, required: true },
    gen4_turbo: { durations: twoToTen },
    "veo3.1": { durations: [4, 6, 8] },
    "veo3.1_fast": { durations: [4, 6, 8] },
  },
  text: { "gen4.5": { durations: twoToTen, required: true }, "veo3.1": { durations: [4, 6, 8] }, "veo3.1_fast": { durations: [4, 6, 8] } },
};

type Issue = { code: string; message: string; path: string[] } & Record<string, unknown>;

/** The zod-style issue Runway reports for `body.model` and `body.duration` on this endpoint, if any. */
function modelIssue(kind: "image" | "text", body: Record<string, unknown>): Issue | undefined {
  const models = MODELS[kind];
  const spec = typeof body.model === "string" && Object.hasOwn(models, body.model) ? models[body.model]! : undefined;
  if (!spec) {
    const values = Object.keys(models);
    return { code: "invalid_value", values, path: ["model"], message: `Invalid option: expected one of ${values.map((v) => `"${v}"`).join("|")}` };
  }
  const d = body.duration;
  if (d === undefined)
    return spec.required
      ? { code: "invalid_type", expected: "number", path: ["duration"], message: "Invalid input: expected number, received undefined" }
      : undefined;
  if (typeof d !== "number")
    return { code: "invalid_type", expected: "number", path: ["duration"], message: `Invalid input: expected number, received ${typeof d}` };
  if (Array.isArray(spec.durations)) {
    if (spec.durations.includes(d)) return undefined;
    return { code: "invalid_value", values: spec.durations, path: ["duration"], message: `Invalid option: expected one of ${spec.durations.join("|")}` };
  }
  const { min, max } = spec.durations;
  if (!Number.isInteger(d))
    return { code: "invalid_type", expected: "int", received: "number", path: ["duration"], message: "Invalid input: expected int, received number" };
  if (d < min)
    return { origin: "number", code: "too_small", minimum: min, inclusive: true, path: ["duration"], message: `Too small: expected number to be >=${min}` };
  if (d > max)
    return { origin: "number", code: "too_big", maximum: max, inclusive: true, path: ["duration"], message: `Too big: expected number to be <=${max}` };
  return undefined;
}

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
      const issue = modelIssue(kind, body);
      if (issue) return this.json(res, 400, { error: "Validation of body failed", issues: [issue], docUrl: "https://docs.dev.runwayml.com/api" });
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
