import type { IncomingMessage, ServerResponse } from "node:http";
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { probe } from "@vp/media";
import { type FakeJob, FakeProvider, jsonBody } from "./server";
import { makeFakeSpeech } from "./media";

/**
 * ElevenLabs text to speech as documented (elevenlabs.io/docs/api-reference/text-to-speech/convert):
 * POST /v1/text-to-speech/{voice_id}?output_format=mp3_44100_128 with xi-api-key and { text, model_id,
 * voice_settings } -> the MP3 bytes (request-id header). Errors { detail: { code, message } } (`status` is the legacy
 * name of `code`). The audio is
 * the request's text spoken by espeak-ng. Every accepted request is a "job" (counted in `creates`).
 *
 * With timestamps as documented (elevenlabs.io/docs/api-reference/text-to-speech/convert-with-timestamps, read
 * 2026-12-07; the official SDK's textToSpeech.convertWithTimestamps and AudioWithTimestampsResponse):
 * POST /v1/text-to-speech/{voice_id}/with-timestamps, the same body and query -> JSON { audio_base64, alignment,
 * normalized_alignment }, each alignment { characters, character_start_times_seconds, character_end_times_seconds },
 * with the request-id, history-item-id and character-cost headers. The alignment spreads the text's characters
 * evenly over the returned audio's probed length, so its last character ends where the audio does.
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
      const speech = await this.speak(res, url, raw);
      if (!speech) return;
      try {
        await this.sendFile(res, speech.file, "audio/mpeg", speech.job, { "request-id": speech.job.id });
      } finally {
        this.settle(speech.job);
      }
    });
    this.route("POST", /^\/v1\/text-to-speech\/[\w-]+\/with-timestamps$/, "create", async (_req, res, url, raw) => {
      const speech = await this.speak(res, url, raw);
      if (!speech) return;
      try {
        const text = speech.entry.item.text;
        const mp3 = await readFile(speech.file);
        const alignment = spreadCharacters(text, mp3Seconds(mp3) ?? (await probe(speech.file)).durationSeconds);
        this.json(
          res,
          200,
          { audio_base64: mp3.toString("base64"), alignment, normalized_alignment: alignment },
          {
            "request-id": speech.job.id,
            "history-item-id": speech.entry.item.history_item_id,
            "character-cost": String(text.length),
          },
        );
      } finally {
        this.settle(speech.job);
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

  /**
   * One accepted speech request: a job, a history item ("processing" while espeak-ng speaks, then "created") and
   * the MP3. Undefined when the request was refused (the error is already sent).
   */
  private async speak(res: ServerResponse, url: URL, raw: Buffer): Promise<{ job: FakeJob; entry: HistoryEntry; file: string } | undefined> {
    const body = jsonBody(raw);
    if (typeof body.text !== "string" || !body.text.trim()) {
      this.error(res, 422, "text: field required", "invalid_text");
      return undefined;
    }
    const voiceId = url.pathname.split("/")[3]!;
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
      entry.file = await makeFakeSpeech(this.dir, `speech-${++this.speeches}.mp3`, body.text);
    } catch (error) {
      this.settle(job);
      throw error;
    }
    entry.item.state = "created";
    return { job, entry, file: entry.file };
  }

  /** The request is answered (or will never be): it no longer counts as in flight. */
  private settle(job: FakeJob): void {
    if (job.downloaded) return;
    job.downloaded = true;
    this.inFlight -= 1;
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

/** Each character of `text` gets an equal share of `seconds`, back to back from 0, in whole milliseconds. */
export function spreadCharacters(text: string, seconds: number) {
  const characters = Array.from(text);
  const at = (i: number) => Math.round((seconds * 1000 * i) / characters.length) / 1000;
  return {
    characters,
    character_start_times_seconds: characters.map((_, i) => at(i)),
    character_end_times_seconds: characters.map((_, i) => at(i + 1)),
  };
}

/**
 * The length of an MP3 of makeFakeSpeech (44.1 kHz) from the Info/Xing tag its encoder writes in the first frame:
 * frames × 1152 samples, what ffprobe reports, without starting a process. Undefined without the tag.
 */
function mp3Seconds(mp3: Buffer): number | undefined {
  const head = mp3.subarray(0, 1024);
  const at = Math.max(head.indexOf("Info"), head.indexOf("Xing"));
  if (at < 0 || at + 12 > head.length || !(head.readUInt32BE(at + 4) & 1)) return undefined;
  return (head.readUInt32BE(at + 8) * 1152) / 44_100;
}
