import { z } from "zod";
import {
  AssetConfig,
  ComposeVideoConfig,
  GenerateAnimationConfig,
  GenerateVoiceoverConfig,
  MergeVideosConfig,
  MixAudioConfig,
  RenderCodeConfig,
  TalkingHeadConfig,
} from "./config";
import type { InputSlot } from "./inputs";
import type { MediaType } from "./node-types";

/**
 * The node-type catalog: the one place a node type is defined. Everything else derives from it: NODE_TYPES and
 * the zod enum, input slots and config schemas (graph checks, editor forms), which executor subscribes to it
 * (and so the bus permissions, KEDA triggers and executor manifests, checked by tests/deploy), its cache work
 * version, its concurrency default and its palette entry in the editor.
 *
 * Adding a type: an entry here, a handler `services/<executor>/src/handlers/<type>.ts` registered in that
 * executor's main.ts, and its media function. CONTRIBUTING.md walks through it.
 */

export const EXECUTORS = ["executor-ffmpeg", "executor-ai"] as const;
export type ExecutorName = (typeof EXECUTORS)[number];

/** Glyphs the editor draws for node types (web/components/icons.tsx has one per name). */
export const NODE_ICONS = ["file", "person", "sparkle", "microphone", "code", "sliders", "film-strip", "picture-in-picture", "captions"] as const;
export type NodeIconName = (typeof NODE_ICONS)[number];

export interface NodeTypeDefinition {
  /** Editor presentation: palette label, one-line description, glyph, accent colour and its light tint. */
  label: string;
  description: string;
  icon: NodeIconName;
  color: `#${string}`;
  tint: `#${string}`;
  /** The executor process that subscribes to this type's jobs. */
  executor: ExecutorName;
  /** Named input slots: `inputs` of a node is `{ [slot]: [upstreamNodeId, ...] }`, in order. */
  inputs: Readonly<Record<string, InputSlot>>;
  /** The config schema (strict; every field optional with a documented default). */
  config: z.ZodType;
  /** What the node produces, known before it runs; "asset" means the asset's declared type. */
  output: MediaType | "asset";
  /** Bump when the executor starts producing different results for the same inputs (the result cache's key). */
  workVersion: number;
  /** Jobs of this type in flight across all replicas when `<TYPE>_CONCURRENCY` is unset; default JOB_CONCURRENCY. */
  concurrency?: number;
  /**
   * How its cost is counted: provider (the AI provider's price table, estimated before a run), compute (CPU
   * seconds at the executor's configured rate; free by default).
   */
  cost: "provider" | "compute";
}

const Colour = z.string().regex(/^#[0-9A-Fa-f]{6}$/, "a colour as #RRGGBB");
const slot = (min: number, max: number, accepts: readonly MediaType[], description: string): InputSlot => ({ min, max, accepts, description });

export const NODE_CATALOG = {
  asset: {
    label: "Asset",
    description: "A file or text you provide",
    icon: "file",
    color: "#0284c7",
    tint: "#e0f2fe",
    executor: "executor-ffmpeg",
    inputs: {},
    config: AssetConfig,
    output: "asset",
    workVersion: 1,
    cost: "compute",
  },
  "talking-head": {
    label: "Talking head",
    description: "An avatar speaks a script",
    icon: "person",
    color: "#9333ea",
    tint: "#f3e8ff",
    executor: "executor-ai",
    // min 0: config.script can supply the text instead; the executor checks that one of the two is there.
    inputs: { script: slot(0, 1, ["text"], "the script the avatar speaks (else config.script)") },
    config: TalkingHeadConfig,
    output: "video",
    workVersion: 1,
    cost: "provider",
  },
  "generate-animation": {
    label: "Animation",
    description: "Video generated from a prompt",
    icon: "sparkle",
    color: "#ea580c",
    tint: "#ffedd5",
    executor: "executor-ai",
    inputs: {
      prompt: slot(0, 1, ["text"], "prompt text (else config.prompt)"),
      image: slot(0, 1, ["image"], "first frame for image-to-video"),
    },
    config: GenerateAnimationConfig,
    output: "video",
    workVersion: 1,
    cost: "provider",
  },
  "generate-voiceover": {
    label: "Voiceover",
    description: "Speech from a script",
    icon: "microphone",
    color: "#db2777",
    tint: "#fce7f3",
    executor: "executor-ai",
    inputs: { script: slot(0, 1, ["text"], "the text to speak (else config.script)") },
    config: GenerateVoiceoverConfig,
    output: "audio",
    workVersion: 1,
    cost: "provider",
  },
  "render-code": {
    label: "Code animation",
    description: "Code typed out on screen",
    icon: "code",
    color: "#16a34a",
    tint: "#dcfce7",
    executor: "executor-ffmpeg",
    inputs: { code: slot(0, 1, ["text"], "the code to type (else config.code)") },
    config: RenderCodeConfig,
    output: "video",
    workVersion: 1,
    // A render-code job runs a Chromium.
    concurrency: 1,
    cost: "compute",
  },
  "mix-audio": {
    label: "Mix audio",
    description: "Put a new audio track on a video",
    icon: "sliders",
    color: "#0d9488",
    tint: "#ccfbf1",
    executor: "executor-ffmpeg",
    inputs: {
      video: slot(1, 1, ["video"], "the video whose audio is replaced"),
      audio: slot(1, 1, ["audio"], "the new audio track"),
    },
    config: MixAudioConfig,
    output: "video",
    workVersion: 1,
    cost: "compute",
  },
  "merge-videos": {
    label: "Merge videos",
    description: "Play clips one after another",
    icon: "film-strip",
    color: "#4f46e5",
    tint: "#e0e7ff",
    executor: "executor-ffmpeg",
    inputs: { segments: slot(2, 100, ["video"], "the clips, in play order") },
    config: MergeVideosConfig,
    output: "video",
    workVersion: 1,
    cost: "compute",
  },
  "compose-video": {
    label: "Picture in picture",
    description: "Overlay videos on a background",
    icon: "picture-in-picture",
    color: "#ca8a04",
    tint: "#fef9c3",
    executor: "executor-ffmpeg",
    inputs: {
      background: slot(1, 1, ["video"], "the full-frame video"),
      overlays: slot(1, 8, ["video"], "picture-in-picture videos"),
    },
    config: ComposeVideoConfig,
    output: "video",
    workVersion: 2,
    cost: "compute",
  },
  captions: {
    label: "Captions",
    description: "Subtitles burned into a video, with WebVTT and SRT files",
    icon: "captions",
    color: "#475569",
    tint: "#f1f5f9",
    executor: "executor-ffmpeg",
    inputs: {
      video: slot(1, 1, ["video"], "the video to caption"),
      speech: slot(1, 1, ["audio", "text"], "a voiceover (timed as spoken) or the script (spread over the video by word count)"),
    },
    config: z.strictObject({
      /** Text height in pixels of the video's frame; default 5 % of its height. */
      fontSize: z.number().int().min(8).max(400).optional(),
      /** Where the captions sit; default bottom. */
      position: z.enum(["bottom", "top", "center"]).optional(),
      /** #RRGGBB; defaults white text with a black outline, no box. */
      textColor: Colour.optional(),
      outlineColor: Colour.optional(),
      backgroundColor: Colour.optional(),
      /** Characters per caption line (two lines at most per caption); default 42. */
      maxCharsPerLine: z.number().int().min(10).max(120).optional(),
      /** Seconds into the video at which the speech starts (a voiceover laid after an intro); default 0. */
      offsetSeconds: z.number().min(0).max(86_400).optional(),
    }),
    output: "video",
    workVersion: 1,
    cost: "compute",
  },
} as const satisfies Record<string, NodeTypeDefinition>;

export type NodeType = keyof typeof NODE_CATALOG;
/** Every node type, in catalog order (the editor's palette order). */
export const NODE_TYPES = Object.keys(NODE_CATALOG) as [NodeType, ...NodeType[]];
export const NodeType = z.enum(NODE_TYPES);

/** A type's definition (for code that reads the catalog generically). */
export function nodeTypeDefinition(type: NodeType): NodeTypeDefinition {
  return NODE_CATALOG[type];
}

const mapCatalog = <T>(pick: (definition: NodeTypeDefinition, type: NodeType) => T): Record<NodeType, T> =>
  Object.fromEntries(NODE_TYPES.map((type) => [type, pick(NODE_CATALOG[type], type)])) as Record<NodeType, T>;

/** The config schema of every node type. */
export const CONFIG_SCHEMAS: { readonly [T in NodeType]: (typeof NODE_CATALOG)[T]["config"] } = mapCatalog((d) => d.config) as never;

/** The input slots of every node type. Order inside a slot matters (merge-videos.segments is the play order). */
export const INPUT_SCHEMAS: Record<NodeType, Readonly<Record<string, InputSlot>>> = mapCatalog((d) => d.inputs);

/** Which executor process serves a node type. */
export const EXECUTOR_OF: Record<NodeType, ExecutorName> = mapCatalog((d) => d.executor);

/** The node types an executor subscribes to, in catalog order. */
export function nodeTypesOf(executor: ExecutorName): NodeType[] {
  return NODE_TYPES.filter((type) => NODE_CATALOG[type].executor === executor);
}

/**
 * The media type a node of this type produces, known before it runs (for edge checks in the editor and at node
 * creation). Assets produce whatever their declared asset.type is.
 */
export function outputMediaType(type: NodeType, asset?: { type?: MediaType } | null): MediaType | undefined {
  const output = NODE_CATALOG[type]?.output;
  return output === "asset" ? asset?.type : output;
}
