import type { IncomingMessage } from "node:http";
import { randomUUID } from "node:crypto";
import { FakeProvider, jsonBody } from "./server";
import { makeFakeSpeech } from "./media";

/**
 * ElevenLabs text to speech as documented (elevenlabs.io/docs/api-reference/text-to-speech/convert):
 * POST /v1/text-to-speech/{voice_id}?output_format=mp3_44100_128 with xi-api-key and { text, model_id,
 * voice_settings } -> the MP3 bytes (request-id header). Errors { detail: { code, message } } (`status` is the legacy
 * name of `code`). The audio is
 * the request's text spoken by espeak-ng. Every accepted request is a "job" (counted in `creates`).
 *
 * Every request is kept in the history as ElevenLabs keeps generated audio (elevenlabs.io/docs/api-reference/
 * history/list and history/get-audio; the API's openapi.json in elevenlabs/elevenlabs-docs, read 2026-12-07):
 * GET /v1/history (voice_id, page_size, start_after_history_item_id; newest first; { history, has_more,
 * last_history_item_id }) and GET /v1/history/{history_item_id}/audio. An item is "processing" while its audio
 * is generated, "created" after, even when the request's answer was never delivered.
 */
interface HistoryEntry {
  item: {
    history_item_id: string;
    request_id: string;
    voice_id: string;
    model_id: string | null;
    text: string;
    date_unix: number;
    character_count_change_from: number;
    character_count_change_to: number;
    content_type: string;
    state: "processing" | "created";
    settings: Record<string, unknown> | null;
    source: "TTS";
  };
  file?: string;
}

export class FakeElevenlabs extends FakeProvider {
  private speeches = 0;
  private characters = 0;
  /** Generated items, oldest first. */
  readonly history: HistoryEntry[] = [];

  constructor(options: ConstructorParameters<typeof FakeProvider>[0]) {
    super(options);
    this.route("POST", /^\/v1\/text-to-speech\/[\w-]+$/, "create", async (_req, res, url, raw) => {
      const body = jsonBody(raw);
      if (typeof body.text !== "string" || !body.text.trim()) return this.error(res, 422, "text: field required", "invalid_text");
      const voiceId = url.pathname.split("/").pop()!;
      const job = this.newJob(body, { voiceId, outputFormat: url.searchParams.get("output_format") }, randomUUID());
      const entry: HistoryEntry = {
        item: {
          history_item_id: randomUUID().replace(/-/g, "").slice(0, 20),
          request_id: job.id,
          voice_id: voiceId,
          model_id: typeof body.model_id === "string" ? body.model_id : null,
          text: body.text,
          date_unix: Math.floor(Date.now() / 1000),
          character_count_change_from: this.characters,
          character_count_change_to: (this.characters += body.text.length),
          content_type: "audio/mpeg",
          state: "processing",
          settings: (body.voice_settings as Record<string, unknown> | undefined) ?? null,
          source: "TTS",
        },
      };
      this.history.push(entry);
      try {
        const file = await makeFakeSpeech(this.dir, `speech-${++this.speeches}.mp3`, body.text);
        entry.file = file;
        entry.item.state = "created";
        await this.sendFile(res, file, "audio/mpeg", job, { "request-id": job.id });
      } finally {
        if (!job.downloaded) {
          job.downloaded = true;
          this.inFlight -= 1;
        }
      }
    });
    this.route("GET", /^\/v1\/history$/, "lookup", (_req, res, url) => {
      const voiceId = url.searchParams.get("voice_id");
      const pageSize = Math.min(1000, Number(url.searchParams.get("page_size") ?? 100) || 100);
      let newest = [...this.history].reverse().filter((e) => !voiceId || e.item.voice_id === voiceId);
      const after = url.searchParams.get("start_after_history_item_id");
      if (after) newest = newest.slice(newest.findIndex((e) => e.item.history_item_id === after) + 1);
      const page = newest.slice(0, pageSize).map((e) => ({ ...e.item }));
      this.json(res, 200, { history: page, has_more: newest.length > pageSize, last_history_item_id: page.at(-1)?.history_item_id ?? null });
    });
    this.route("GET", /^\/v1\/history\/[\w-]+\/audio$/, "download", async (_req, res, url) => {
      const id = url.pathname.split("/")[3];
      const entry = this.history.find((e) => e.item.history_item_id === id);
      if (!entry) return this.error(res, 404, `history item ${id} not found`, "history_item_not_found");
      if (!entry.file) return this.error(res, 400, `history item ${id} is still processing`, "history_item_processing");
      await this.sendFile(res, entry.file, "audio/mpeg");
    });
  }

  override reset(): void {
    super.reset();
    this.history.length = 0;
  }

  protected async prepare() {}

  protected errorBody(_status: number, message: string, code?: string) {
    return { detail: { code: code ?? "invalid_request", message } };
  }

  protected authorized(req: IncomingMessage) {
    return req.headers["xi-api-key"] === this.apiKey;
  }
}
