import { writeFile } from "node:fs/promises";
import type { TimedText } from "@vp/contracts";
import { createProviderHttp, type ProviderHttpOptions } from "./http";

/**
 * ElevenLabs text to speech with character timestamps, written against
 * https://elevenlabs.io/docs/api-reference/text-to-speech/convert-with-timestamps ("Create speech with timing",
 * read 2026-12-07) and the official SDK (elevenlabs/elevenlabs-js 2.73, textToSpeech.convertWithTimestamps,
 * BodyTextToSpeechFullWithTimestamps, AudioWithTimestampsResponse, CharacterAlignmentResponseModel):
 * POST /v1/text-to-speech/{voice_id}/with-timestamps with `xi-api-key`, JSON body { text, model_id, voice_settings },
 * `output_format` as a query parameter; the answer is JSON { audio_base64, alignment: { characters,
 * character_start_times_seconds, character_end_times_seconds }, normalized_alignment } (`alignment` follows the
 * text as sent, `normalized_alignment` the text after normalisation; either may be null), with the `request-id`,
 * `history-item-id` and `character-cost` headers. Errors: `{ detail: { code, message } }` (or a FastAPI
 * validation list).
 * Generated audio is kept in the account's history (https://elevenlabs.io/docs/api-reference/history/list and
 * .../history/get-audio, and the API's openapi.json in elevenlabs/elevenlabs-docs, read 2026-12-07):
 * GET /v1/history?voice_id&page_size&start_after_history_item_id -> { history: [{ history_item_id, request_id,
 * voice_id, model_id, text, date_unix, state: created|deleted|processing, settings, source }], has_more,
 * last_history_item_id }, newest first; GET /v1/history/{history_item_id}/audio -> the audio bytes (no alignment).
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

/** When each character of the text is said, in seconds from the start of the audio (three arrays of one length). */
export interface ElevenlabsAlignment {
  characters: string[];
  character_start_times_seconds: number[];
  character_end_times_seconds: number[];
}

export interface ElevenlabsSpeechResult {
  requestId?: string;
  historyItemId?: string;
  /** Characters billed, as the `character-cost` header says. */
  characterCost?: number;
  bytes: number;
  /** The alignment of the text as sent, when the answer carried a well-formed one. */
  alignment?: ElevenlabsAlignment;
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
    /**
     * Writes MP3 (44.1 kHz, 128 kbit/s) to `dest` and returns when each character is said; the provider's request
     * id identifies what was paid for.
     */
    async textToSpeech(input: ElevenlabsSpeech, dest: string, signal?: AbortSignal): Promise<ElevenlabsSpeechResult> {
      const settings: Record<string, number> = {};
      if (input.stability !== undefined) settings.stability = input.stability;
      if (input.similarityBoost !== undefined) settings.similarity_boost = input.similarityBoost;
      if (input.speed !== undefined) settings.speed = Math.min(1.2, Math.max(0.7, input.speed));
      const response = await http.json({
        method: "POST",
        path: `/v1/text-to-speech/${encodeURIComponent(input.voiceId)}/with-timestamps`,
        query: { output_format: "mp3_44100_128" },
        what: "text to speech",
        signal,
        body: { text: input.text, model_id: input.modelId, ...(Object.keys(settings).length ? { voice_settings: settings } : {}) },
      });
      const body = (response.json ?? {}) as { audio_base64?: unknown; alignment?: unknown };
      const audio = typeof body.audio_base64 === "string" ? Buffer.from(body.audio_base64, "base64") : Buffer.alloc(0);
      if (audio.length === 0) throw new Error("ElevenLabs text to speech: empty audio");
      await writeFile(dest, audio);
      const cost = response.headers.get("character-cost");
      return {
        requestId: response.headers.get("request-id") ?? undefined,
        historyItemId: response.headers.get("history-item-id") ?? undefined,
        characterCost: cost && Number.isFinite(Number(cost)) ? Number(cost) : undefined,
        bytes: audio.length,
        alignment: parseAlignment(body.alignment),
      };
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

/** The alignment if it is one: three arrays of the same length, strings and finite times. */
export function parseAlignment(value: unknown): ElevenlabsAlignment | undefined {
  const a = value as Partial<ElevenlabsAlignment> | null | undefined;
  if (!a || !Array.isArray(a.characters) || !Array.isArray(a.character_start_times_seconds) || !Array.isArray(a.character_end_times_seconds)) {
    return undefined;
  }
  const n = a.characters.length;
  if (n === 0 || a.character_start_times_seconds.length !== n || a.character_end_times_seconds.length !== n) return undefined;
  if (!a.characters.every((c) => typeof c === "string")) return undefined;
  const finite = (t: unknown) => typeof t === "number" && Number.isFinite(t) && t >= 0;
  if (!a.character_start_times_seconds.every(finite) || !a.character_end_times_seconds.every(finite)) return undefined;
  return a as ElevenlabsAlignment;
}

/**
 * When each sentence is said, from the character alignment: a sentence runs from the start of its first
 * character to the end of its last. Sentences are found in order in the aligned characters with white space
 * ignored on both sides (splitSentences folds runs of it); undefined when the characters are not the text's.
 */
export function sentencesFromAlignment(alignment: ElevenlabsAlignment, sentences: readonly string[]): TimedText[] | undefined {
  // The aligned text without white space, and for each of its code units the index of its aligned character.
  let flat = "";
  const owner: number[] = [];
  alignment.characters.forEach((c, i) => {
    const visible = c.replace(/\s+/g, "");
    flat += visible;
    for (let k = 0; k < visible.length; k++) owner.push(i);
  });
  const timed: TimedText[] = [];
  let cursor = 0;
  let previousEnd = 0;
  for (const text of sentences) {
    const needle = text.replace(/\s+/g, "");
    if (!needle || !flat.startsWith(needle, cursor)) return undefined;
    const first = owner[cursor]!;
    const last = owner[cursor + needle.length - 1]!;
    cursor += needle.length;
    const start = Math.max(previousEnd, alignment.character_start_times_seconds[first]!);
    const end = Math.max(start, alignment.character_end_times_seconds[last]!);
    timed.push({ start: round3(start), end: round3(end), text });
    previousEnd = end;
  }
  return cursor === flat.length ? timed : undefined;
}

const round3 = (n: number) => Math.round(n * 1000) / 1000;
