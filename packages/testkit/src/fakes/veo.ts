import type { IncomingMessage } from "node:http";
import { randomBytes } from "node:crypto";
import { FakeProvider, jsonBody } from "./server";
import { makeFakeVideo } from "./media";

/**
 * Veo 3 through the Gemini API as documented (ai.google.dev/gemini-api/docs/video):
 * POST /v1beta/models/{model}:predictLongRunning with x-goog-api-key -> { name: "models/{model}/operations/{id}" };
 * GET /v1beta/{name} -> { name, done, metadata, response: { generateVideoResponse: { generatedSamples: [{ video:
 * { uri } }] } } } or { done: true, error: { code, message } }; the uri (/v1beta/files/{id}:download?alt=media)
 * needs the key and redirects to a signed URL (/download/{id}.mp4) that must not receive it.
 * Errors { error: { code, message, status } }.
 */
export class FakeVeo extends FakeProvider {
  private video = "";
  /** Origin of the signed download URL the file endpoint redirects to (default: this server). */
  redirectOrigin: string | undefined;
  /** Set by filterNextJob(): the next job finishes without samples, filtered by the safety policy. */
  private filterReasons: string[] = [];

  constructor(options: ConstructorParameters<typeof FakeProvider>[0]) {
    super(options);
    this.route("POST", /^\/v1beta\/models\/[a-z0-9.-]+:predictLongRunning$/, "create", (_req, res, url, raw) => {
      const body = jsonBody(raw);
      const instance = (body.instances as Array<{ prompt?: string }> | undefined)?.[0];
      if (!instance?.prompt) return this.error(res, 400, "instances[0].prompt is required", "INVALID_ARGUMENT");
      const model = url.pathname.slice("/v1beta/models/".length, -":predictLongRunning".length);
      const id = randomBytes(8).toString("hex");
      const job = this.newJob(body, { model, filtered: this.filterReasons.shift() }, id);
      this.json(res, 200, { name: `models/${model}/operations/${job.id}` });
    });
    this.route("GET", /^\/v1beta\/models\/[a-z0-9.-]+\/operations\/[a-f0-9]+$/, "status", (_req, res, url) => {
      const id = url.pathname.split("/").pop()!;
      const job = this.jobs.get(id);
      if (!job) return this.error(res, 404, "Operation not found", "NOT_FOUND");
      const name = url.pathname.slice("/v1beta/".length);
      const state = this.advance(job);
      if (state === "running")
        return this.json(res, 200, {
          name,
          done: false,
          metadata: { "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningMetadata" },
        });
      if (state === "failed") return this.json(res, 200, { name, done: true, error: { code: 13, message: job.failReason } });
      const filtered = job.extra.filtered as string | undefined;
      const generateVideoResponse = filtered
        ? { raiMediaFilteredCount: 1, raiMediaFilteredReasons: [filtered] }
        : { generatedSamples: [{ video: { uri: `${this.url}/v1beta/files/${job.id}:download?alt=media` } }] };
      this.json(res, 200, {
        name,
        done: true,
        response: { "@type": "type.googleapis.com/google.ai.generativelanguage.v1beta.PredictLongRunningResponse", generateVideoResponse },
      });
    });
    this.route("GET", /^\/v1beta\/files\/[a-f0-9]+:download$/, "download", (_req, res, url) => {
      const id = url.pathname.slice("/v1beta/files/".length, -":download".length);
      if (!this.jobs.has(id)) return this.error(res, 404, "File not found", "NOT_FOUND");
      res.writeHead(302, { location: `${this.redirectOrigin ?? this.url}/download/${id}.mp4?sig=${randomBytes(6).toString("hex")}` });
      res.end();
    });
    this.route("GET", /^\/download\/[a-f0-9]+\.mp4$/, undefined, async (req, res, url) => {
      if (req.headers["x-goog-api-key"]) this.keyLeaks += 1;
      const job = this.jobs.get(url.pathname.slice("/download/".length, -".mp4".length));
      if (!job) return this.error(res, 404, "no such file");
      await this.sendFile(res, this.video, "video/mp4", job);
    });
  }

  /** The next job completes with no video, filtered by the (fake) safety policy for `reason`. */
  filterNextJob(reason: string): this {
    this.filterReasons.push(reason);
    return this;
  }

  override reset(): void {
    super.reset();
    this.filterReasons = [];
    this.redirectOrigin = undefined;
  }

  protected async prepare() {
    this.video = await makeFakeVideo(this.dir, "veo.mp4", { seconds: 2, width: 320, height: 180, color: "#2a6f97" });
  }

  protected errorBody(status: number, message: string, code?: string) {
    return { error: { code: status, message, status: code ?? (status === 429 ? "RESOURCE_EXHAUSTED" : status >= 500 ? "INTERNAL" : "INVALID_ARGUMENT") } };
  }

  protected authorized(req: IncomingMessage) {
    return req.headers["x-goog-api-key"] === this.apiKey;
  }
}
