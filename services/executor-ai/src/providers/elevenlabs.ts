import { writeFile } from "node:fs/promises";
import { createProviderHttp, type ProviderHttpOptions } from "./http";

/**
 * ElevenLabs text to speech, written against https://elevenlabs.io/docs/api-reference/text-to-speech/convert
 * and the official SDK (elevenlabs/elevenlabs-js, textToSpeech.convert): POST /v1/text-to-speech/{voice_id}
 * with `xi-api-key`, JSON body { text, model_id, voice_settings }, `output_format` as a query parameter; the
 * response body is the audio itself. Errors: `{ detail: { status, message } }` (or a FastAPI validation list).
 */
export const ELEVENLABS_DEFAULT_BASE_URL = "https://api.elevenlabs.io";
/** "George", the voice of ElevenLabs' own examples. */
export const ELEVENLABS_DEFAULT_VOICE = "JBFqnCBsd6RMkjVDRZzb";
/** Per-request text limit of eleven_multilingual_v2. */
export const ELEVENLABS_MAX_CHARACTERS = 10_000;

export interface ElevenlabsSpeech {
  voiceId: string;
  modelId: string;
  text: string;
  stability?: number;
  similarityBoost?: number;
  speed?: number;
}

export function describeElevenlabsError(body: unknown): { message?: string; code?: string } {
  const detail = (body as { detail?: unknown })?.detail;
  if (detail && typeof detail === "object" && !Array.isArray(detail)) {
    const d = detail as { message?: string; status?: string };
    return { message: d.message, code: d.status };
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
  };
}
export type ElevenlabsClient = ReturnType<typeof createElevenlabsClient>;
