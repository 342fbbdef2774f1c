import {
  INPUT_SCHEMAS,
  NODE_CATALOG,
  NODE_TYPES,
  type MediaType,
  type NodeIconName,
  type NodeStatus,
  type NodeType,
  type NodeTypeDefinition,
} from "@vp/contracts";

/** How each node type looks in the editor (from the catalog): its name, a one-line description, glyph and colour. */
export interface NodeTypeInfo {
  type: NodeType;
  label: string;
  description: string;
  icon: NodeIconName;
  /** Accent colour (header strip, icon tile, minimap). */
  color: string;
  /** A light tint of the accent for the icon tile background. */
  tint: string;
}

export const NODE_TYPE_INFO = Object.fromEntries(
  NODE_TYPES.map((type) => {
    const { label, description, icon, color, tint }: NodeTypeDefinition = NODE_CATALOG[type];
    return [type, { type, label, description, icon, color, tint }];
  }),
) as Record<NodeType, NodeTypeInfo>;

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

/** The input slots of a type in schema order, with a short label of what they take ("up to 1 text", "2–100 videos"). */
export function inputSlots(type: NodeType) {
  return Object.entries(INPUT_SCHEMAS[type]).map(([slot, spec]) => {
    const count = spec.min === spec.max ? `${spec.max}` : spec.min === 0 ? `up to ${spec.max}` : `${spec.min}–${spec.max}`;
    const media = spec.accepts.map((m) => (spec.max > 1 && m !== "audio" && m !== "json" && m !== "text" ? `${m}s` : m)).join(" or ");
    return { slot, ...spec, hint: `${count} ${media}` };
  });
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
