import { z } from "zod";

export const NODE_TYPES = [
  "asset",
  "talking-head",
  "generate-animation",
  "generate-voiceover",
  "render-code",
  "mix-audio",
  "merge-videos",
  "compose-video",
] as const;
export const NodeType = z.enum(NODE_TYPES);
export type NodeType = z.infer<typeof NodeType>;

/** pending, in_progress, completed, failed, plus queued (claimed, job dispatched) and cancelled. */
export const NODE_STATUSES = ["pending", "queued", "in_progress", "completed", "failed", "cancelled"] as const;
export const NodeStatus = z.enum(NODE_STATUSES);
export type NodeStatus = z.infer<typeof NodeStatus>;

export const MEDIA_TYPES = ["text", "json", "video", "audio", "image"] as const;
export const MediaType = z.enum(MEDIA_TYPES);
export type MediaType = z.infer<typeof MediaType>;

/** Which executor process serves a node type. Asset ingest is ffmpeg-shaped (it probes the file). */
export const EXECUTOR_OF: Record<NodeType, "executor-ffmpeg" | "executor-ai"> = {
  asset: "executor-ffmpeg",
  "merge-videos": "executor-ffmpeg",
  "mix-audio": "executor-ffmpeg",
  "compose-video": "executor-ffmpeg",
  "render-code": "executor-ffmpeg",
  "talking-head": "executor-ai",
  "generate-voiceover": "executor-ai",
  "generate-animation": "executor-ai",
};

/** Statuses after which a node does no more work until it is reset. */
export const TERMINAL_STATUSES: readonly NodeStatus[] = ["completed", "failed", "cancelled"];

export function assertNever(x: never, what = "value"): never {
  throw new Error(`Unexpected ${what}: ${JSON.stringify(x)}`);
}
