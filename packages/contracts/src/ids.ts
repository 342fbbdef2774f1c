import { z } from "zod";

/**
 * Pipeline and node ids travel in NATS subjects (`vp.state.<pipelineId>.<nodeId>`), storage keys and
 * URLs, so they are restricted to a subject-, path- and URL-safe alphabet. This one rule is what keeps
 * `../../etc/passwd`, `a.b` (an extra subject token) or `*` out of every place an id is used.
 */
export const ID_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$/;
export const Id = z.string().regex(ID_PATTERN, "must be 1-64 characters of letters, digits, '-' or '_', starting with a letter or digit");
export type Id = z.infer<typeof Id>;

/** Free text shown to people (titles). No control characters and no path traversal sequences. */
export const Title = z
  .string()
  .trim()
  .min(1, "must not be empty")
  .max(200, "must be at most 200 characters")
  .refine((s) => !/[\u0000-\u001f\u007f]/.test(s), "must not contain control characters")
  .refine((s) => !/(^|[\\/])\.\.([\\/]|$)/.test(s), "must not contain path traversal ('../')");
