import type { Context } from "hono";
import { z } from "zod";
import { AssetInput, assetUrlProblem, Id, NodePosition, NodeType, Title } from "@vp/contracts";
import { HttpError, zodMessage } from "./errors";

/** Parses a JSON body; malformed JSON and non-objects are a 400 with the reason. */
export async function jsonBody<T extends z.ZodType>(c: Context, schema: T): Promise<z.infer<T>> {
  let raw: unknown;
  try {
    raw = await c.req.json();
  } catch (error) {
    throw new HttpError(400, `Malformed JSON body: ${(error as Error).message}`);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) throw new HttpError(422, zodMessage(parsed.error));
  return parsed.data;
}

/** Ids in the URL that cannot be valid ids cannot name anything: they are a 404, like any unknown id. */
export function pathId(value: string | undefined, what: "Pipeline" | "Node"): string {
  if (value === undefined || !Id.safeParse(value).success) throw new HttpError(404, `${what} not found`);
  return value;
}

const SafeName = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

export const PipelineConfig = z.strictObject({
  /** Budget in US dollars: a run whose estimate exceeds it is refused (422 with the per-node estimate). null: none. */
  maxCost: z.number().nonnegative().max(1_000_000).nullable().optional(),
  storage: z
    .strictObject({
      bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "must be a valid S3 bucket name").optional(),
      prefix: z.string().regex(SafeName, "must be letters, digits, '.', '-' or '_'").optional(),
    })
    .optional(),
});

export const CreatePipelineBody = z.strictObject({
  id: Id.optional(),
  title: Title,
  config: PipelineConfig.optional(),
});

export const UpdatePipelineBody = z
  .strictObject({ title: Title.optional(), config: PipelineConfig.optional() })
  .refine((b) => b.title !== undefined || b.config !== undefined, "nothing to update (title or config)");

const Inputs = z.record(z.string().regex(/^[a-z][a-zA-Z0-9_-]{0,31}$/, "is not an input slot name"), z.array(Id).max(100));

export const CreateNodeBody = z.strictObject({
  id: Id.optional(),
  title: Title,
  type: NodeType,
  inputs: Inputs.default({}),
  config: z.record(z.string(), z.unknown()).default({}),
  asset: AssetInput.optional(),
  /** Canvas position (the editor's). */
  position: NodePosition.optional(),
}).superRefine((body, ctx) => {
  const problem = body.asset ? assetUrlProblem(body.asset) : null;
  if (problem) ctx.addIssue({ code: "custom", path: ["asset", "url"], message: problem });
});

export const UpdateNodeBody = z
  .strictObject({
    title: Title.optional(),
    inputs: Inputs.optional(),
    /** Merged into config; a key set to null is removed (JSON merge patch). */
    config: z.record(z.string(), z.unknown()).optional(),
    asset: AssetInput.partial().optional(),
    /** Canvas position: its own column, never a config change. */
    position: NodePosition.optional(),
  })
  .refine((b) => Object.values(b).some((v) => v !== undefined), "nothing to update (title, inputs, config, asset or position)");

/** Keys of an uploaded file in the asset column (set by the upload route). */
const UPLOAD_FIELDS = ["source", "size", "contentType", "uploadedAt"] as const;

/**
 * The asset patch to write for a PATCH of an asset node. An asset has one origin, the last one set: a url
 * drops an earlier upload and inline content; inline content, or a change to text/json, drops a url (the
 * upload route drops a url too). Cleared keys are written as null (the column takes partial writes only;
 * readers treat null as absent). 422 when the url does not fit the asset.
 */
export function assetPatchFor(current: unknown, patch: z.infer<typeof UpdateNodeBody>["asset"] & object): Record<string, unknown> {
  const existing = (current && typeof current === "object" ? current : {}) as Record<string, unknown>;
  const type = patch.type ?? existing.type;
  if (patch.url !== undefined) {
    const problem = assetUrlProblem({ type, content: patch.content, url: patch.url });
    if (problem) throw new HttpError(422, `asset.url: ${problem}`);
    const cleared = [...UPLOAD_FIELDS, "content"].filter((key) => existing[key] !== undefined && existing[key] !== null);
    return { ...patch, ...Object.fromEntries(cleared.map((key) => [key, null])) };
  }
  const hasUrl = typeof existing.url === "string";
  if (hasUrl && (patch.content !== undefined || type === "text" || type === "json")) return { ...patch, url: null };
  return patch;
}

export const PageQuery = z.object({
  page: z.coerce.number().int().min(1).max(1_000_000).default(1),
  per: z.coerce.number().int().min(1).max(100).default(25),
});
