import { writeFile } from "node:fs/promises";
import { createProviderHttp, type ProviderHttpOptions } from "./http";

/**
 * ElevenLabs text to speech, written against https://elevenlabs.io/docs/api-reference/text-to-speech/convert
 * and the official SDK (elevenlabs/elevenlabs-js, textToSpeech.convert): POST /v1/text-to-speech/{voice_id}
 * with `xi-api-key`, JSON body { text, model_id, voice_settings }, `output_format` as a query parameter; the
 * response body is the audio itself. Errors: `{ detail: { status, message } }` (or a FastAPI validation list).
 * Generated audio is kept in the account's history (https://elevenlabs.io/docs/api-reference/history/list and
 * .../history/get-audio, and the API's openapi.json in elevenlabs/elevenlabs-docs, read 2026-12-07):
 * GET /v1/history?voice_id&page_size&start_after_history_item_id -> { history: [{ history_item_id, request_id,
 * voice_id, model_id, text, date_unix, state: created|deleted|processing, settings, source }], has_more,
 * last_history_item_id }, newest first; GET /v1/history/{history_item_id}/audio -> the audio bytes.
 */
export const ELEVENLABS_DEFAULT_BASE_URL = "https://api.elevenlabs.io";
/** "George", the voice of ElevenLabs' own examples. */
export const ELEVENLABS_DEFAULT_VOICE = "JBFqnCBsd6RMkjVDRZzb";
/**
 * Characters per request, by model (help.elevenlabs.io "API - Error Code 400 or 401", max_character_limit_exceeded,
 * and the models page, read 2026-12-07): eleven_v3 5,000; flash/turbo v2.5 40,000; flash/turbo v2 30,000;
 * multilingual and English v1/v2 10,000. A model not listed gets the smallest, so a request is never refused for length.
 */
const MAX_CHARACTERS: Record<string, number> = {
  eleven_v3: 5_000,
  eleven_flash_v2_5: 40_000,
  eleven_turbo_v2_5: 40_000,
  eleven_flash_v2: 30_000,
  eleven_turbo_v2: 30_000,
  eleven_multilingual_v2: 10_000,
  eleven_multilingual_v1: 10_000,
  eleven_monolingual_v1: 10_000,
};
export const elevenlabsMaxCharacters = (modelId: string): number => MAX_CHARACTERS[modelId] ?? 5_000;

export interface ElevenlabsSpeech {
  voiceId: string;
  modelId: string;
  text: string;
  stability?: number;
  similarityBoost?: number;
  speed?: number;
}

export interface ElevenlabsHistoryItem {
  history_item_id: string;
  request_id?: string | null;
  voice_id?: string | null;
  model_id?: string | null;
  text?: string | null;
  date_unix: number;
  state: "created" | "deleted" | "processing" | string;
  source?: string | null;
}

/** The speech a lost request may have paid for: same voice, model and text, generated at or after `sinceUnix`. */
export interface ElevenlabsSpeechQuery {
  voiceId: string;
  modelId: string;
  text: string;
  sinceUnix: number;
}

/** History pages read while looking for one speech: the newest items come first, so a recent one is on page one. */
const HISTORY_PAGES = 5;

export function describeElevenlabsError(body: unknown): { message?: string; code?: string } {
  const detail = (body as { detail?: unknown })?.detail;
  if (detail && typeof detail === "object" && !Array.isArray(detail)) {
    // `code` is current; `status` is the legacy field older answers carry.
    const d = detail as { message?: string; code?: string; status?: string };
    return { message: d.message, code: d.code ?? d.status };
  }
  if (Array.isArray(detail)) {
    return { message: detail.map((d: { msg?: string; loc?: unknown[] }) => `${(d.loc ?? []).join(".")}: ${d.msg ?? ""}`).join("; ") };
  }
  if (typeof detail === "string") return { message: detail };
  return {};
}

export function createElevenlabsClient(options: Omit<ProviderHttpOptions, "provider" | "authHeaders" | "secrets" | "describeError"> & { apiKey: string }) {
  const http = createProviderHttp({
    ...options,
    provider: "elevenlabs",
    authHeaders: { "xi-api-key": options.apiKey },
    secrets: [options.apiKey],
    describeError: describeElevenlabsError,
  });
  return {
    http,
    /** Writes MP3 (44.1 kHz, 128 kbit/s) to `dest`; the provider's request id identifies what was paid for. */
    async textToSpeech(input: ElevenlabsSpeech, dest: string, signal?: AbortSignal): Promise<{ requestId?: string; bytes: number }> {
      const settings: Record<string, number> = {};
      if (input.stability !== undefined) settings.stability = input.stability;
      if (input.similarityBoost !== undefined) settings.similarity_boost = input.similarityBoost;
      if (input.speed !== undefined) settings.speed = Math.min(1.2, Math.max(0.7, input.speed));
      const response = await http.binary({
        method: "POST",
        path: `/v1/text-to-speech/${encodeURIComponent(input.voiceId)}`,
        query: { output_format: "mp3_44100_128" },
        what: "text to speech",
        signal,
        body: { text: input.text, model_id: input.modelId, ...(Object.keys(settings).length ? { voice_settings: settings } : {}) },
      });
      const audio = response.bytes ?? Buffer.alloc(0);
      if (audio.length === 0) throw new Error("ElevenLabs text to speech: empty audio");
      await writeFile(dest, audio);
      return { requestId: response.headers.get("request-id") ?? undefined, bytes: audio.length };
    },
    /**
     * The newest history item matching `query` (its state may still be "processing"), or undefined. Reads the
     * history newest first and stops at the first item older than `sinceUnix`.
     */
    async findSpeech(query: ElevenlabsSpeechQuery, signal?: AbortSignal): Promise<ElevenlabsHistoryItem | undefined> {
      let after: string | undefined;
      for (let page = 0; page < HISTORY_PAGES; page++) {
        const { json } = await http.json({
          method: "GET",
          path: "/v1/history",
          query: { voice_id: query.voiceId, page_size: "100", start_after_history_item_id: after },
          what: "history lookup",
          signal,
        });
        const body = json as { history?: ElevenlabsHistoryItem[]; has_more?: boolean; last_history_item_id?: string | null };
        const items = Array.isArray(body?.history) ? body.history : [];
        for (const item of items) {
          if (item.date_unix < query.sinceUnix) return undefined;
          if (item.state === "deleted" || (item.source && item.source !== "TTS")) continue;
          if (item.text === query.text && item.voice_id === query.voiceId && item.model_id === query.modelId) return item;
        }
        if (!body?.has_more || !body.last_history_item_id) return undefined;
        after = body.last_history_item_id;
      }
      return undefined;
    },
    /** Downloads a history item's audio to `dest`. */
    async historyAudio(historyItemId: string, dest: string, signal?: AbortSignal): Promise<{ bytes: number }> {
      const response = await http.binary({ method: "GET", path: `/v1/history/${encodeURIComponent(historyItemId)}/audio`, what: "history audio", signal });
      const audio = response.bytes ?? Buffer.alloc(0);
      if (audio.length === 0) throw new Error(`ElevenLabs history item ${historyItemId}: empty audio`);
      await writeFile(dest, audio);
      return { bytes: audio.length };
    },
  };
}
export type ElevenlabsClient = ReturnType<typeof createElevenlabsClient>;
