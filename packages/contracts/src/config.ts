import { z } from "zod";
import { MediaType } from "./node-types";
import { VariableName } from "./variables";

/**
 * Config schemas per node type. Strict: an unknown key is a mistake the producer should hear about,
 * not something silently ignored. Every field is optional with a documented default so a node can be
 * created first and configured after.
 */
const Provider = <T extends readonly [string, ...string[]]>(values: T) => z.enum(values).optional();

export const AssetConfig = z.strictObject({});

export const MergeVideosConfig = z.strictObject({
  /** Where the work runs: this machine's ffmpeg (default) or the video-merger Lambda. */
  provider: Provider(["ffmpeg", "lambda"]),
  /** auto: stream copy when segments are compatible, re-encode otherwise. always: always re-encode. */
  reencode: z.enum(["auto", "always"]).optional(),
  /** Output size when re-encoding; defaults to the first segment's. */
  width: z.number().int().min(16).max(7680).optional(),
  height: z.number().int().min(16).max(4320).optional(),
  fps: z.number().min(1).max(120).optional(),
});

/**
 * AI nodes. `provider` omitted: "local" unless the paid provider's API key is configured on the executor.
 * voiceId/avatarId/modelId are the provider's own ids (for "local" voiceId is an espeak-ng voice, e.g. "en-us").
 */
export const AI_PROVIDERS = {
  "talking-head": ["local", "heygen"],
  "generate-voiceover": ["local", "elevenlabs"],
  "generate-animation": ["local", "veo3", "runway"],
} as const;

/** Text an AI node speaks, when no `script` input (a text asset) is connected. */
const Script = z.string().trim().min(1).max(10_000);
/** A provider id as the provider spells it: no spaces, quotes or control characters. */
const ProviderId = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:+-]{0,199}$/, "must be a provider id (letters, digits, . _ : + -)");

/** HeyGen's kinds of avatar (a look's `avatar_type`); one request shape for all, different prices. */
export const HEYGEN_AVATAR_TYPES = ["studio_avatar", "digital_twin", "photo_avatar"] as const;
export type HeygenAvatarType = (typeof HEYGEN_AVATAR_TYPES)[number];

export const TalkingHeadConfig = z.strictObject({
  provider: Provider(["heygen", "local"]),
  avatarId: ProviderId.optional(),
  /** What kind of avatar avatarId is (HeyGen bills photo avatars less); default studio_avatar. */
  avatarType: z.enum(HEYGEN_AVATAR_TYPES).optional(),
  voiceId: ProviderId.optional(),
  script: Script.optional(),
  /** Speech rate (1 = normal) and, for the local voice, espeak-ng pitch 0-99. */
  speed: z.number().min(0.5).max(1.5).optional(),
  pitch: z.number().min(0).max(99).optional(),
  /**
   * Output frame, e.g. 1280x720 (the local card renders it exactly). HeyGen renders the nearest of its resolutions
   * (720p, 1080p, 4k) and aspect ratios (16:9, 9:16, 4:5, 5:4, 1:1): heygenFrame().
   */
  width: z.number().int().min(128).max(3840).multipleOf(2).optional(),
  height: z.number().int().min(128).max(3840).multipleOf(2).optional(),
});

export const GenerateVoiceoverConfig = z.strictObject({
  provider: Provider(["elevenlabs", "local"]),
  voiceId: ProviderId.optional(),
  modelId: ProviderId.optional(),
  script: Script.optional(),
  speed: z.number().min(0.25).max(4).optional(),
  pitch: z.number().min(0).max(99).optional(),
  /** ElevenLabs voice_settings. */
  stability: z.number().min(0).max(1).optional(),
  similarityBoost: z.number().min(0).max(1).optional(),
});

/** Seconds each Runway model renders: @runwayml/sdk 4.20.1 and runwayml/sdk-node 0df86ce, read 2026-12-07 (docs/providers.md). */
export const RUNWAY_DURATIONS = {
  gen4_turbo: [2, 3, 4, 5, 6, 7, 8, 9, 10],
  "gen4.5": [2, 3, 4, 5, 6, 7, 8, 9, 10],
} as const satisfies Record<string, readonly number[]>;

/** The durations Runway's `model` renders, or undefined for a model not in RUNWAY_DURATIONS. */
export function runwayDurations(model: string): readonly number[] | undefined {
  return Object.hasOwn(RUNWAY_DURATIONS, model) ? RUNWAY_DURATIONS[model as keyof typeof RUNWAY_DURATIONS] : undefined;
}

/** "2 to 10 whole seconds" for a run of whole seconds, else "4, 6 or 8 seconds". */
function secondsList(values: readonly number[]): string {
  const run = values.length > 2 && values.every((v, i) => i === 0 || v === values[i - 1]! + 1);
  if (run) return `${values[0]} to ${values.at(-1)} whole seconds`;
  return `${values.length > 1 ? `${values.slice(0, -1).join(", ")} or ` : ""}${values.at(-1)} seconds`;
}

/**
 * Why Runway would refuse `seconds` for any of `models` (the ones it may run: the named model, or both defaults), or
 * null when every known model among them renders it. Models not in RUNWAY_DURATIONS are left to Runway.
 */
export function runwayDurationProblem(models: readonly string[], seconds: number): string | null {
  const known = models.filter((m) => runwayDurations(m));
  if (known.length === 0) return null;
  const accepted = runwayDurations(known[0]!)!.filter((d) => known.every((m) => runwayDurations(m)!.includes(d)));
  if (accepted.includes(seconds)) return null;
  return `Runway ${known.join(" and ")} ${known.length > 1 ? "render" : "renders"} ${secondsList(accepted)}, not ${seconds}`;
}

/** The Runway models a generate-animation config may run with, when it names Runway (by provider or model). */
function runwayModelsOf(config: { provider?: string; modelId?: string }): string[] {
  if (config.provider === "runway") return config.modelId ? [config.modelId] : [AI_DEFAULTS.runwayImageModel, AI_DEFAULTS.runwayTextModel];
  if (config.provider === undefined && config.modelId && runwayDurations(config.modelId)) return [config.modelId];
  return [];
}

export const GenerateAnimationConfig = z
  .strictObject({
    provider: Provider(["veo3", "runway", "local"]),
    prompt: z.string().max(4000).optional(),
    durationSeconds: z
      .number()
      .min(1)
      .max(60)
      .optional()
      .describe(
        `Seconds of video. Runway gen4_turbo and gen4.5: ${secondsList(RUNWAY_DURATIONS["gen4.5"])} (default 5). ` +
          "Veo 3: 4, 6 or 8 (the longest not above; default 8). Local: default 4.",
      ),
    /** Veo: veo-3.0-generate-001, veo-3.0-fast-generate-001. Runway: gen4_turbo (image), gen4.5. */
    modelId: ProviderId.optional(),
    aspectRatio: z.enum(["16:9", "9:16"]).optional(),
    negativePrompt: z.string().max(1000).optional(),
  })
  // Refused when saved (a 422 naming the durations) rather than silently rendered at another length.
  .superRefine((config, ctx) => {
    if (config.durationSeconds === undefined) return;
    const problem = runwayDurationProblem(runwayModelsOf(config), config.durationSeconds);
    if (problem) ctx.addIssue({ code: "custom", path: ["durationSeconds"], message: problem });
  });

export const RenderCodeConfig = z.strictObject({
  provider: Provider(["remotion"]),
  code: z.string().max(100_000).optional(),
  language: z.string().max(40).optional(),
  theme: z.enum(["dark", "light"]).optional(),
  /** Characters typed per second. */
  typingSpeed: z.number().min(1).max(500).optional(),
  highlightLines: z.array(z.number().int().min(1)).max(1000).optional(),
  /** Output frame size (rounded to even numbers) and rate; default 1280x720 at 30 fps. */
  width: z.number().int().min(64).max(3840).optional(),
  height: z.number().int().min(64).max(2160).optional(),
  fps: z.number().int().min(1).max(60).optional(),
});

export const MixAudioConfig = z.strictObject({
  provider: Provider(["ffmpeg", "lambda"]),
  /** What happens when the audio and the video differ in length. */
  lengthMismatch: z.enum(["pad", "trim"]).optional(),
  /** replace: the new audio replaces the original. duck: the original stays underneath at originalGain. */
  mode: z.enum(["replace", "duck"]).optional(),
  originalGain: z.number().min(0).max(1).optional(),
  /** Where the new audio starts in the video; before it, silence (replace) or the original alone (duck). */
  startSeconds: z.number().min(0).max(3600).optional().describe("Seconds into the video at which the new audio starts"),
  fadeInSeconds: z.number().min(0).max(60).optional().describe("Fade the new audio in over this many seconds"),
  /** Ends where the new audio is last heard: its own end, or the output's end when it is cut. */
  fadeOutSeconds: z.number().min(0).max(60).optional().describe("Fade the new audio out over this many seconds before it ends"),
});

export const OverlayConfig = z.strictObject({
  position: z.enum(["top-left", "top-right", "bottom-left", "bottom-right", "center", "custom"]).optional(),
  x: z.number().int().min(0).optional(),
  y: z.number().int().min(0).optional(),
  /** Width of the overlay as a fraction of the background's width. */
  size: z.number().min(0.05).max(1).optional(),
  startSeconds: z.number().min(0).optional(),
  cornerRadius: z.number().int().min(0).max(500).optional(),
  borderWidth: z.number().int().min(0).max(100).optional(),
  /** A colour name or #RRGGBB; default white. */
  borderColor: z
    .string()
    .regex(/^(?:[A-Za-z]{1,32}|#[0-9A-Fa-f]{6})$/, "a colour name or #RRGGBB")
    .optional(),
  /** Distance from the frame's edges for the corner presets, in pixels; default 2.5 % of the shorter side. */
  margin: z.number().int().min(0).max(1000).optional(),
});

export const ComposeVideoConfig = z.strictObject({
  provider: Provider(["ffmpeg", "lambda"]),
  overlays: z.array(OverlayConfig).max(8).optional(),
  /** Default mix: the background's audio and each overlay's from its start (a presenter overlay is heard). */
  audio: z.enum(["background", "overlay", "mix"]).optional().describe("Whose audio the output carries; default mix (background and overlays)"),
});

export type MergeVideosConfig = z.infer<typeof MergeVideosConfig>;
export type MixAudioConfig = z.infer<typeof MixAudioConfig>;
export type ComposeVideoConfig = z.infer<typeof ComposeVideoConfig>;
export type OverlayConfig = z.infer<typeof OverlayConfig>;
export type RenderCodeConfig = z.infer<typeof RenderCodeConfig>;

/** Longest accepted asset URL, in characters. */
export const ASSET_URL_MAX_LENGTH = 2048;

/**
 * Where a video, audio or image asset is downloaded from, checked as text only: http or https, a host, no user
 * name or password, no whitespace or control characters. Which addresses may be reached is decided by the
 * executor at connect time (executor-ffmpeg refuses loopback, private, link-local and other internal
 * addresses, after DNS and on every redirect), never here: a name's address can change after this check.
 */
export const AssetUrl = z
  .string()
  .max(ASSET_URL_MAX_LENGTH, `must be at most ${ASSET_URL_MAX_LENGTH} characters`)
  .superRefine((value, ctx) => {
    const problem = assetUrlSyntaxProblem(value);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  });

/** Why `value` is not an acceptable asset URL (syntax only), or null. */
export function assetUrlSyntaxProblem(value: string): string | null {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0020\u007f-\u009f\\]/.test(value)) return "must not contain whitespace, control characters or backslashes";
  if (!/^https?:\/\//i.test(value)) return "must be an http:// or https:// URL";
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return "is not a valid URL";
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return "must be an http:// or https:// URL";
  if (url.username || url.password) return "must not contain a user name or password";
  if (!url.hostname) return "must name a host";
  return null;
}

/**
 * The asset column of an asset node as a client may write it. `source` (the storage key) is set only by
 * the gateway's upload route, never by a client, so no user-controlled path ever reaches storage. A media
 * asset (video, audio, image) comes from an upload or from `url`, which executor-ffmpeg downloads when the
 * node runs; text and json assets take `content` or an upload.
 */
export const AssetInput = z.strictObject({
  type: MediaType,
  /** Inline content for text and json assets (a script, a prompt). */
  content: z.string().max(1_000_000).optional(),
  /** A video, audio or image asset's media, fetched by the executor (see AssetUrl). */
  url: AssetUrl.optional(),
  /** A media asset bound to a pipeline variable of its type: each batch row gives its own file; a plain run uses this asset's own. */
  variable: VariableName.optional(),
});
export type AssetInput = z.infer<typeof AssetInput>;

/**
 * Why the asset's `url` does not fit its other fields (kept out of AssetInput so that it stays extendable and
 * partial): a url only on media assets, and not together with inline content. Null when it fits.
 */
export function assetUrlProblem(asset: { type?: unknown; content?: unknown; url?: unknown }): string | null {
  if (typeof asset.url !== "string") return null;
  if (asset.type === "text" || asset.type === "json") return `${asset.type} assets take inline content or an upload, not a url`;
  if (asset.content !== undefined && asset.content !== null) return "an asset takes content or a url, not both";
  return null;
}

/** The asset column as stored. */
export const Asset = AssetInput.extend({
  source: z.string().optional(),
  size: z.number().int().nonnegative().optional(),
  contentType: z.string().optional(),
  /** The uploaded file's name as the browser gave it (a base name, at most 255 characters), for the editor to show. */
  name: z.string().max(255).optional(),
  uploadedAt: z.string().optional(),
});
export type Asset = z.infer<typeof Asset>;

// ---------------------------------------------------------------------------------------------------
// AI provider prices: one table, shared by executor-ai (estimate before paying, real cost after), budgets
// and the editor (estimate shown before running). Read from the providers' pages on `readOn`; sources in
// docs/providers.md. executor-ai may replace sections with PRICE_TABLE_FILE.

export const PriceTable = z.object({
  /** When the prices were read from the providers' pages (YYYY-MM-DD). */
  readOn: z.string().regex(/^\d{4}-\d\d-\d\d$/),
  /**
   * HeyGen bills per second of generated video (API, Avatar IV/V), by avatar type and resolution: studio avatars and
   * digital twins at 720p/1080p and 4K; photo avatars (absent: priced as the others, never below).
   */
  heygen: z.object({
    usdPerVideoSecond: z.number().nonnegative(),
    usdPerVideoSecond4k: z.number().nonnegative().optional(),
    photoAvatar: z.object({ usdPerVideoSecond: z.number().nonnegative(), usdPerVideoSecond4k: z.number().nonnegative().optional() }).optional(),
  }),
  /** ElevenLabs bills per character, by model ("default" for models not listed). */
  elevenlabs: z.object({ usdPer1kCharacters: z.record(z.string(), z.number().nonnegative()) }),
  /** Veo bills per generated second, by model. */
  veo3: z.object({ usdPerVideoSecond: z.record(z.string(), z.number().nonnegative()) }),
  /** Runway bills credits per second of output, by model; credits have one dollar price. */
  runway: z.object({ usdPerCredit: z.number().nonnegative(), creditsPerSecond: z.record(z.string(), z.number().nonnegative()) }),
  /** Local providers cost this machine's compute, per wall-clock second. */
  local: z.object({ usdPerComputeSecond: z.number().nonnegative() }),
});
export type PriceTable = z.infer<typeof PriceTable>;

export const DEFAULT_PRICES: PriceTable = {
  readOn: "2026-11-21",
  // The 4K and photo-avatar prices were read on 2026-12-07 (docs/providers.md).
  heygen: { usdPerVideoSecond: 0.0667, usdPerVideoSecond4k: 0.0833, photoAvatar: { usdPerVideoSecond: 0.05, usdPerVideoSecond4k: 0.0667 } },
  elevenlabs: {
    usdPer1kCharacters: { eleven_multilingual_v2: 0.1, eleven_v3: 0.1, eleven_flash_v2_5: 0.05, eleven_turbo_v2_5: 0.05, default: 0.1 },
  },
  veo3: { usdPerVideoSecond: { "veo-3.0-generate-001": 0.4, "veo-3.0-fast-generate-001": 0.15, default: 0.4 } },
  runway: { usdPerCredit: 0.01, creditsPerSecond: { gen4_turbo: 5, "gen4.5": 12, default: 12 } },
  local: { usdPerComputeSecond: 0.00005 },
};

/** Provider defaults the estimate and executor-ai share. */
export const AI_DEFAULTS = {
  elevenlabsModel: "eleven_multilingual_v2",
  veoModel: "veo-3.0-generate-001",
  /** Durations Veo 3 renders. */
  veoDurations: [4, 6, 8] as const,
  runwayImageModel: "gen4_turbo",
  runwayTextModel: "gen4.5",
  localAnimationSeconds: 4,
} as const;

/** The Veo duration for a wish: the longest allowed one not above it (4 when asked for less). */
export function veoDurationFor(wanted = 8): (typeof AI_DEFAULTS.veoDurations)[number] {
  return [...AI_DEFAULTS.veoDurations].reverse().find((d) => d <= wanted) ?? AI_DEFAULTS.veoDurations[0];
}

/**
 * The Runway duration for a wish when no provider was named (a named one was checked when saved): the nearest one
 * `model` renders; default 5. A model not in RUNWAY_DURATIONS gets 2-10 whole seconds, Runway's general range.
 */
export function runwayDurationFor(wanted = 5, model?: string): number {
  const accepted = model === undefined ? undefined : runwayDurations(model);
  if (!accepted) return Math.round(Math.min(10, Math.max(2, wanted)));
  // Ties go to the longer duration, as Math.round does.
  return accepted.reduce((best, d) => (Math.abs(d - wanted) <= Math.abs(best - wanted) ? d : best));
}

/** Spoken seconds of a script at `speed` (150 words per minute at speed 1), at least one second. */
export function spokenSeconds(script: string, speed = 1): number {
  const words = script.trim().split(/\s+/).filter(Boolean).length;
  return Math.max(1, words / 2.5 / speed);
}

export type HeygenResolution = "720p" | "1080p" | "4k";
export type HeygenAspectRatio = "16:9" | "9:16" | "4:5" | "5:4" | "1:1";
const HEYGEN_ASPECTS: Array<[HeygenAspectRatio, number]> = [
  ["16:9", 16 / 9],
  ["9:16", 9 / 16],
  ["4:5", 4 / 5],
  ["5:4", 5 / 4],
  ["1:1", 1],
];

/**
 * HeyGen's API v3 takes a resolution and an aspect ratio, not a free frame: the nearest aspect ratio, and the
 * smallest resolution whose short edge covers the frame's. What a talking head's width x height renders as (and
 * is priced at) on HeyGen.
 */
export function heygenFrame(width: number, height: number): { resolution: HeygenResolution; aspectRatio: HeygenAspectRatio } {
  const ratio = width / height;
  const aspectRatio = HEYGEN_ASPECTS.reduce((best, a) => (Math.abs(Math.log(a[1] / ratio)) < Math.abs(Math.log(best[1] / ratio)) ? a : best))[0];
  const short = Math.min(width, height);
  return { resolution: short <= 720 ? "720p" : short <= 1080 ? "1080p" : "4k", aspectRatio };
}

const usd = (n: number) => Math.round(Math.max(0, n) * 1e6) / 1e6;
const byModel = (table: Record<string, number>, model: string) => table[model] ?? table.default ?? 0;

/** Dollar amounts in each provider's own unit. */
export function createPricing(prices: PriceTable = DEFAULT_PRICES) {
  return {
    prices,
    heygen: (videoSeconds: number, resolution: HeygenResolution = "1080p", avatarType: HeygenAvatarType = "studio_avatar") => {
      const tier = (avatarType === "photo_avatar" && prices.heygen.photoAvatar) || prices.heygen;
      return usd(videoSeconds * (resolution === "4k" ? (tier.usdPerVideoSecond4k ?? tier.usdPerVideoSecond) : tier.usdPerVideoSecond));
    },
    elevenlabs: (characters: number, model: string) => usd((characters / 1000) * byModel(prices.elevenlabs.usdPer1kCharacters, model)),
    veo3: (videoSeconds: number, model: string) => usd(videoSeconds * byModel(prices.veo3.usdPerVideoSecond, model)),
    runway: (videoSeconds: number, model: string) => usd(videoSeconds * byModel(prices.runway.creditsPerSecond, model) * prices.runway.usdPerCredit),
    local: (computeSeconds: number) => usd(computeSeconds * prices.local.usdPerComputeSecond),
  };
}
export type Pricing = ReturnType<typeof createPricing>;

export interface AiCostInput {
  /** The text a talking head or voiceover speaks (input asset or config.script). */
  script?: string;
  speed?: number;
  modelId?: string;
  durationSeconds?: number;
  /** An image input is connected (Runway then defaults to its image model). */
  hasImage?: boolean;
  /** The output frame (a talking head: HeyGen prices 4K higher). */
  width?: number;
  height?: number;
  /** A talking head's config.avatarType (HeyGen prices photo avatars lower; anything else as a studio avatar). */
  avatarType?: string;
}

/**
 * What running an AI node is expected to cost, before anything is paid: the same numbers executor-ai records as
 * metadata.estimatedCost. `provider` is the one that will run ("local" when none is named and no key is set).
 */
export function estimateAiCost(
  type: "talking-head" | "generate-voiceover" | "generate-animation",
  provider: string,
  input: AiCostInput,
  pricing: Pricing = createPricing(),
): number {
  const script = input.script ?? "";
  switch (`${type}/${provider}`) {
    case "talking-head/heygen":
      return pricing.heygen(
        spokenSeconds(script, input.speed),
        heygenFrame(input.width ?? 1280, input.height ?? 720).resolution,
        input.avatarType === "photo_avatar" ? "photo_avatar" : "studio_avatar",
      );
    case "talking-head/local":
      return pricing.local(spokenSeconds(script, input.speed) * 0.3);
    case "generate-voiceover/elevenlabs":
      return pricing.elevenlabs(script.length, input.modelId ?? AI_DEFAULTS.elevenlabsModel);
    case "generate-voiceover/local":
      return pricing.local(spokenSeconds(script, input.speed) * 0.05);
    case "generate-animation/veo3":
      return pricing.veo3(veoDurationFor(input.durationSeconds), input.modelId ?? AI_DEFAULTS.veoModel);
    case "generate-animation/runway": {
      const model = input.modelId ?? (input.hasImage ? AI_DEFAULTS.runwayImageModel : AI_DEFAULTS.runwayTextModel);
      return pricing.runway(runwayDurationFor(input.durationSeconds, model), model);
    }
    case "generate-animation/local":
      return pricing.local((input.durationSeconds ?? AI_DEFAULTS.localAnimationSeconds) * 0.2);
    default:
      return 0;
  }
}
