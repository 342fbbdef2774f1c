import type { MediaType, NodeType } from "./node-types";

/** One named input slot of a node type: how many upstream nodes it takes and what they must produce. */
export interface InputSlot {
  readonly min: number;
  readonly max: number;
  readonly accepts: readonly MediaType[];
  readonly description: string;
}

/**
 * The input schema of every node type: its named input slots. `inputs` of a node is
 * `{ [slot]: [upstreamNodeId, ...] }`; order inside a slot matters (merge-videos.segments is the play order).
 */
export const INPUT_SCHEMAS: Record<NodeType, Readonly<Record<string, InputSlot>>> = {
  asset: {},
  // min 0: config.script can supply the text instead; the executor checks that one of the two is there.
  "talking-head": {
    script: { min: 0, max: 1, accepts: ["text"], description: "the script the avatar speaks (else config.script)" },
  },
  "generate-voiceover": {
    script: { min: 0, max: 1, accepts: ["text"], description: "the text to speak (else config.script)" },
  },
  "generate-animation": {
    prompt: { min: 0, max: 1, accepts: ["text"], description: "prompt text (else config.prompt)" },
    image: { min: 0, max: 1, accepts: ["image"], description: "first frame for image-to-video" },
  },
  "render-code": {
    code: { min: 0, max: 1, accepts: ["text"], description: "the code to type (else config.code)" },
  },
  "mix-audio": {
    video: { min: 1, max: 1, accepts: ["video"], description: "the video whose audio is replaced" },
    audio: { min: 1, max: 1, accepts: ["audio"], description: "the new audio track" },
  },
  "merge-videos": {
    segments: { min: 2, max: 100, accepts: ["video"], description: "the clips, in play order" },
  },
  "compose-video": {
    background: { min: 1, max: 1, accepts: ["video"], description: "the full-frame video" },
    overlays: { min: 1, max: 8, accepts: ["video"], description: "picture-in-picture videos" },
  },
};

/**
 * The media type a node of this type produces, known before it runs (for edge checks in the editor and
 * at node creation). Assets produce whatever their declared asset.type is.
 */
export function outputMediaType(type: NodeType, asset?: { type?: MediaType } | null): MediaType | undefined {
  switch (type) {
    case "asset":
      return asset?.type;
    case "generate-voiceover":
      return "audio";
    case "talking-head":
    case "generate-animation":
    case "render-code":
    case "mix-audio":
    case "merge-videos":
    case "compose-video":
      return "video";
  }
}
