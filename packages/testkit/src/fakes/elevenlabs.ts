import type { IncomingMessage } from "node:http";
import { randomUUID } from "node:crypto";
import { FakeProvider, jsonBody } from "./server";
import { makeFakeSpeech } from "./media";

/**
 * ElevenLabs text to speech as documented (elevenlabs.io/docs/api-reference/text-to-speech/convert):
 * POST /v1/text-to-speech/{voice_id}?output_format=mp3_44100_128 with xi-api-key and { text, model_id,
 * voice_settings } -> the MP3 bytes (request-id header). Errors { detail: { status, message } }. The audio is
 * the request's text spoken by espeak-ng. Every accepted request is a "job" (counted in `creates`).
 */
export class FakeElevenlabs extends FakeProvider {
  private speeches = 0;

  constructor(options: ConstructorParameters<typeof FakeProvider>[0]) {
    super(options);
    this.route("POST", /^\/v1\/text-to-speech\/[\w-]+$/, "create", async (_req, res, url, raw) => {
      const body = jsonBody(raw);
      if (typeof body.text !== "string" || !body.text.trim()) return this.error(res, 422, "text: field required", "invalid_text");
      const voiceId = url.pathname.split("/").pop()!;
      const job = this.newJob(body, { voiceId, outputFormat: url.searchParams.get("output_format") }, randomUUID());
      try {
        const file = await makeFakeSpeech(this.dir, `speech-${++this.speeches}.mp3`, body.text);
        await this.sendFile(res, file, "audio/mpeg", job, { "request-id": job.id });
      } finally {
        if (!job.downloaded) {
          job.downloaded = true;
          this.inFlight -= 1;
        }
      }
    });
  }

  protected async prepare() {}

  protected errorBody(_status: number, message: string, code?: string) {
    return { detail: { status: code ?? "invalid_request", message } };
  }

  protected authorized(req: IncomingMessage) {
    return req.headers["xi-api-key"] === this.apiKey;
  }
}
