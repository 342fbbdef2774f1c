import { AI_PROVIDERS, DEFAULT_PRICES, estimateAiCost, type NodeType } from "@vp/contracts";

/**
 * What the editor shows about AI nodes: their providers (local first, as in AI_PROVIDERS), suggestions for
 * the provider's voices/avatars/models, the estimated cost before running (the shared `estimateAiCost`, or
 * the executor's own `metadata.estimatedCost` once it has recorded one), and whether an output is a local draft.
 */
export type AiNodeType = keyof typeof AI_PROVIDERS;

export function isAiType(type: NodeType): type is AiNodeType {
  return type in AI_PROVIDERS;
}

/** Providers of an AI node type, "local" first (the executor's default when no API key is configured). */
export function providersOf(type: AiNodeType): readonly string[] {
  const list = AI_PROVIDERS[type] as readonly string[];
  return ["local", ...list.filter((p) => p !== "local")];
}

export const PROVIDER_LABEL: Record<string, string> = {
  // Local work pays no provider; its cost is this machine's compute (the price table's local rate).
  local: "Local draft (this machine: compute only, no provider fee)",
  heygen: "HeyGen",
  elevenlabs: "ElevenLabs",
  veo3: "Google Veo 3",
  runway: "Runway",
};

/** Suggestions for the id fields, per provider (free text is still accepted: the provider's own ids). */
const LOCAL_VOICES = ["en-us", "en-gb", "en-gb-scotland", "de", "fr", "es", "it", "nl", "pt-br"];
const modelsOf = (table: Record<string, number>) => Object.keys(table).filter((m) => m !== "default");

export function idSuggestions(type: AiNodeType, key: string, provider: string): { options: string[]; placeholder: string } | null {
  if (key === "voiceId") {
    if (provider === "local") return { options: LOCAL_VOICES, placeholder: "espeak-ng voice, default en-us" };
    if (provider === "elevenlabs") return { options: [], placeholder: "ElevenLabs voice id" };
    if (provider === "heygen") return { options: [], placeholder: "HeyGen voice id" };
  }
  if (key === "avatarId") {
    if (provider === "local") return { options: [], placeholder: "not used by the local card" };
    return { options: [], placeholder: "HeyGen avatar id" };
  }
  if (key === "modelId") {
    if (type === "generate-voiceover") {
      return provider === "local"
        ? { options: [], placeholder: "not used locally" }
        : { options: modelsOf(DEFAULT_PRICES.elevenlabs.usdPer1kCharacters), placeholder: "default eleven_multilingual_v2" };
    }
    if (provider === "veo3") return { options: modelsOf(DEFAULT_PRICES.veo3.usdPerVideoSecond), placeholder: "default veo-3.0-generate-001" };
    if (provider === "runway") return { options: modelsOf(DEFAULT_PRICES.runway.creditsPerSecond), placeholder: "default gen4.5 (gen4_turbo with an image)" };
    if (provider === "local") return { options: [], placeholder: "not used locally" };
    return { options: [], placeholder: "the provider's model id" };
  }
  return null;
}

interface NodeLike {
  id: string;
  type: NodeType;
  status: string;
  config?: Record<string, unknown> | null;
  inputs?: Record<string, string[]> | null;
  asset?: unknown;
  metadata?: Record<string, unknown> | null;
}

/** The text of a connected text asset (its inline content), if the editor knows it. */
function inputText(node: NodeLike, slot: string, lookup: ReadonlyMap<string, unknown>): string | undefined {
  const id = node.inputs?.[slot]?.[0];
  if (!id) return undefined;
  const upstream = lookup.get(id) as NodeLike | undefined;
  const asset = upstream?.asset as { type?: string; content?: string } | null | undefined;
  return asset?.type === "text" && typeof asset.content === "string" ? asset.content : undefined;
}

export interface CostEstimate {
  usd: number;
  provider: string;
  /** "executor": metadata.estimatedCost recorded by the run; "editor": computed here from the price table. */
  source: "executor" | "editor";
}

/** The estimated cost of an AI node (null for other types). */
export function estimateNode(node: NodeLike, lookup: ReadonlyMap<string, unknown>): CostEstimate | null {
  if (!isAiType(node.type)) return null;
  const metadata = node.metadata ?? {};
  const config = node.config ?? {};
  const provider = String(metadata.provider ?? config.provider ?? "local");
  if (typeof metadata.estimatedCost === "number") return { usd: metadata.estimatedCost, provider, source: "executor" };
  const script = inputText(node, "script", lookup) ?? (typeof config.script === "string" ? config.script : undefined);
  const usd = estimateAiCost(node.type, provider, {
    script,
    speed: typeof config.speed === "number" ? config.speed : undefined,
    modelId: typeof config.modelId === "string" ? config.modelId : undefined,
    durationSeconds: typeof config.durationSeconds === "number" ? config.durationSeconds : undefined,
    hasImage: (node.inputs?.image?.length ?? 0) > 0,
    width: typeof config.width === "number" ? config.width : undefined,
    height: typeof config.height === "number" ? config.height : undefined,
    avatarType: typeof config.avatarType === "string" ? config.avatarType : undefined,
  });
  return { usd, provider, source: "editor" };
}

/** Hover text of a local provider's cost: what it is (compute, not a provider's price) and its exact amount. */
export function computeCostNote(exact: string): string {
  return `Compute on this machine (no provider fee): ${exact}`;
}

/** The visible label of an output made by a local provider ("local draft"), or null. */
export function localDraftLabel(output: Record<string, unknown> | null | undefined): string | null {
  if (!output) return null;
  if (output.provider === "local" || output.local === true) return typeof output.label === "string" && output.label ? output.label : "local draft";
  return null;
}
