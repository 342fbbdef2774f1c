import { readFileSync } from "node:fs";
import { z } from "zod";

/**
 * The one price table of the AI providers, in US dollars, in each provider's own pricing unit. Read on the date
 * below from the pages named in docs/providers.md; prices change, so an operator can replace any part of it
 * with a JSON file (PRICE_TABLE_FILE), validated against this schema at start-up.
 */
export const PriceTable = z.object({
  /** When the prices were read from the providers' pages (YYYY-MM-DD). */
  readOn: z.string().regex(/^\d{4}-\d\d-\d\d$/),
  /** HeyGen bills per second of generated video (API, Avatar IV, 720p/1080p). */
  heygen: z.object({ usdPerVideoSecond: z.number().nonnegative() }),
  /** ElevenLabs bills per character of text, by model (key "default" for models not listed). */
  elevenlabs: z.object({ usdPer1kCharacters: z.record(z.string(), z.number().nonnegative()) }),
  /** Veo bills per second of generated video, by model. */
  veo3: z.object({ usdPerVideoSecond: z.record(z.string(), z.number().nonnegative()) }),
  /** Runway bills credits per second of output, by model; credits have one dollar price. */
  runway: z.object({ usdPerCredit: z.number().nonnegative(), creditsPerSecond: z.record(z.string(), z.number().nonnegative()) }),
  /** Local providers cost this machine's compute, per wall-clock second (the same rate as ffmpeg work). */
  local: z.object({ usdPerComputeSecond: z.number().nonnegative() }),
});
export type PriceTable = z.infer<typeof PriceTable>;

export const DEFAULT_PRICES: PriceTable = {
  readOn: "2026-11-21",
  heygen: { usdPerVideoSecond: 0.0667 },
  elevenlabs: {
    usdPer1kCharacters: { eleven_multilingual_v2: 0.1, eleven_v3: 0.1, eleven_flash_v2_5: 0.05, eleven_turbo_v2_5: 0.05, default: 0.1 },
  },
  veo3: { usdPerVideoSecond: { "veo-3.0-generate-001": 0.4, "veo-3.0-fast-generate-001": 0.15, default: 0.4 } },
  runway: { usdPerCredit: 0.01, creditsPerSecond: { gen4_turbo: 5, "gen4.5": 12, default: 12 } },
  local: { usdPerComputeSecond: 0.00005 },
};

/** DEFAULT_PRICES with the top-level sections of `file` (JSON) replacing theirs. */
export function loadPriceTable(file?: string): PriceTable {
  if (!file) return DEFAULT_PRICES;
  const raw = JSON.parse(readFileSync(file, "utf8")) as Partial<PriceTable>;
  return PriceTable.parse({ ...DEFAULT_PRICES, ...raw });
}

const usd = (n: number) => Math.round(Math.max(0, n) * 1e6) / 1e6;
const byModel = (table: Record<string, number>, model: string) => table[model] ?? table.default ?? 0;

/** Spoken seconds of a script at `speed` (150 words per minute at speed 1), at least one second. */
export function spokenSeconds(script: string, speed = 1): number {
  const words = script.trim().split(/\s+/).filter(Boolean).length;
  return Math.max(1, (words / 2.5) / speed);
}

export function createPricing(prices: PriceTable) {
  return {
    prices,
    heygen: (videoSeconds: number) => usd(videoSeconds * prices.heygen.usdPerVideoSecond),
    elevenlabs: (characters: number, model: string) => usd((characters / 1000) * byModel(prices.elevenlabs.usdPer1kCharacters, model)),
    veo3: (videoSeconds: number, model: string) => usd(videoSeconds * byModel(prices.veo3.usdPerVideoSecond, model)),
    runway: (videoSeconds: number, model: string) => usd(videoSeconds * byModel(prices.runway.creditsPerSecond, model) * prices.runway.usdPerCredit),
    local: (computeSeconds: number) => usd(computeSeconds * prices.local.usdPerComputeSecond),
  };
}
export type Pricing = ReturnType<typeof createPricing>;
