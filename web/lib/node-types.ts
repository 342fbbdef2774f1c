import { INPUT_SCHEMAS, NODE_TYPES, type MediaType, type NodeStatus, type NodeType } from "@vp/contracts";

/** How each node type looks in the editor: its name, a one-line description and its colour. */
export interface NodeTypeInfo {
  type: NodeType;
  label: string;
  description: string;
  /** Accent colour (header strip, icon tile, minimap). */
  color: string;
  /** A light tint of the accent for the icon tile background. */
  tint: string;
}

export const NODE_TYPE_INFO: Record<NodeType, NodeTypeInfo> = {
  asset: { type: "asset", label: "Asset", description: "A file or text you provide", color: "#0284c7", tint: "#e0f2fe" },
  "talking-head": { type: "talking-head", label: "Talking head", description: "An avatar speaks a script", color: "#9333ea", tint: "#f3e8ff" },
  "generate-animation": { type: "generate-animation", label: "Animation", description: "Video generated from a prompt", color: "#ea580c", tint: "#ffedd5" },
  "generate-voiceover": { type: "generate-voiceover", label: "Voiceover", description: "Speech from a script", color: "#db2777", tint: "#fce7f3" },
  "render-code": { type: "render-code", label: "Code animation", description: "Code typed out on screen", color: "#16a34a", tint: "#dcfce7" },
  "mix-audio": { type: "mix-audio", label: "Mix audio", description: "Put a new audio track on a video", color: "#0d9488", tint: "#ccfbf1" },
  "merge-videos": { type: "merge-videos", label: "Merge videos", description: "Play clips one after another", color: "#4f46e5", tint: "#e0e7ff" },
  "compose-video": { type: "compose-video", label: "Picture in picture", description: "Overlay videos on a background", color: "#ca8a04", tint: "#fef9c3" },
};

export const PALETTE: NodeTypeInfo[] = NODE_TYPES.map((type) => NODE_TYPE_INFO[type]);

export const STATUS_LABEL: Record<NodeStatus, string> = {
  pending: "Pending",
  queued: "Queued",
  in_progress: "In progress",
  completed: "Completed",
  failed: "Failed",
  cancelled: "Cancelled",
};

export const MEDIA_LABEL: Record<MediaType, string> = { video: "Video", audio: "Audio", text: "Text", json: "JSON", image: "Image" };

/** The input slots of a type in schema order, with a short label of what they take. */
export function inputSlots(type: NodeType) {
  return Object.entries(INPUT_SCHEMAS[type]).map(([slot, spec]) => ({
    slot,
    ...spec,
    hint: `${spec.min === spec.max ? spec.max : `${spec.min}–${spec.max}`} ${spec.accepts.join("/")}`,
  }));
}

/** Human label of a config key: `typingSpeed` -> `Typing speed`. */
export function fieldLabel(key: string): string {
  const ACRONYMS: Record<string, string> = { fps: "FPS", id: "ID", url: "URL", json: "JSON" };
  const words = key
    .replace(/([a-z0-9])([A-Z])/g, "$1 $2")
    .toLowerCase()
    .split(" ")
    .map((w) => ACRONYMS[w] ?? w)
    .join(" ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** The media type of an uploaded file, from its MIME type (what the gateway's upload route accepts). */
export function mediaOfFile(file: { type: string; name: string }): MediaType | undefined {
  const mime = file.type || guessMime(file.name);
  if (mime.startsWith("video/")) return "video";
  if (mime.startsWith("audio/")) return "audio";
  if (mime.startsWith("image/")) return "image";
  if (mime === "application/json") return "json";
  if (mime === "text/plain") return "text";
  return undefined;
}

/** Browsers leave File.type empty for some extensions; the gateway needs a Content-Type. */
export function guessMime(name: string): string {
  const ext = name.toLowerCase().split(".").pop() ?? "";
  const byExt: Record<string, string> = {
    mp4: "video/mp4",
    mov: "video/quicktime",
    webm: "video/webm",
    mkv: "video/x-matroska",
    mp3: "audio/mpeg",
    wav: "audio/wav",
    m4a: "audio/mp4",
    ogg: "audio/ogg",
    png: "image/png",
    jpg: "image/jpeg",
    jpeg: "image/jpeg",
    txt: "text/plain",
    json: "application/json",
  };
  return byExt[ext] ?? "";
}
