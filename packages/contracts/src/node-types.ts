import { z } from "zod";

// Node types themselves are defined by the catalog (catalog.ts).

/** pending, in_progress, completed, failed, plus queued (claimed, job dispatched) and cancelled. */
export const NODE_STATUSES = ["pending", "queued", "in_progress", "completed", "failed", "cancelled"] as const;
export const NodeStatus = z.enum(NODE_STATUSES);
export type NodeStatus = z.infer<typeof NodeStatus>;

export const MEDIA_TYPES = ["text", "json", "video", "audio", "image"] as const;
export const MediaType = z.enum(MEDIA_TYPES);
export type MediaType = z.infer<typeof MediaType>;

/** Statuses after which a node does no more work until it is reset. */
export const TERMINAL_STATUSES: readonly NodeStatus[] = ["completed", "failed", "cancelled"];

export function assertNever(x: never, what = "value"): never {
  throw new Error(`Unexpected ${what}: ${JSON.stringify(x)}`);
}
