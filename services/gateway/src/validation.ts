import type { Context } from "hono";
import { z } from "zod";
import { AssetInput, Id, NodeInputs, NodePosition, NodeType, Title, VariableName } from "@vp/contracts";
import { HttpError, zodMessage } from "./errors";

/** A UTF-16 surrogate without its pair: JSON can escape one (`"\ud800"`), UTF-8 and Postgres cannot hold it. */
const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Why Postgres text and jsonb cannot store `s` (the write would fail as a 500), or null. */
function unstorable(s: string): string | null {
  if (s.includes("\u0000")) return "must not contain NUL characters (\\u0000)";
  if (LONE_SURROGATE.test(s)) return "must not contain a lone UTF-16 surrogate (\\ud800-\\udfff without its pair): it is not Unicode text";
  return null;
}

/**
 * The first string or key in `value` that Postgres cannot store (a NUL character, a lone surrogate), as a
 * dotted path and the reason; null when there is none. Iterative: a body may nest as deep as its size allows.
 */
export function unstorablePath(value: unknown): { path: string; reason: string } | null {
  type Item = { v: unknown; parent?: Item; key?: string };
  const at = (item: Item) => {
    const keys: string[] = [];
    for (let i: Item | undefined = item; i?.key !== undefined; i = i.parent) keys.push(i.key);
    return keys.reverse().join(".") || "body";
  };
  const stack: Item[] = [{ v: value }];
  while (stack.length) {
    const item = stack.pop()!;
    const { v } = item;
    if (typeof v === "string") {
      const reason = unstorable(v);
      if (reason) return { path: at(item), reason };
    } else if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) stack.push({ v: v[i], parent: item, key: String(i) });
    } else if (v && typeof v === "object") {
      for (const [key, child] of Object.entries(v)) {
        const next = { v: child, parent: item, key };
        const reason = unstorable(key);
        if (reason) return { path: at(next), reason };
        stack.push(next);
      }
    }
  }
  return null;
}

/**
 * Reads a JSON body: malformed JSON is a 400; a string or key Postgres cannot store (NUL, a lone surrogate) a
 * 422, each with the reason. Every route that stores JSON reads its body here.
 */
export async function readJson(c: Context): Promise<unknown> {
  let raw: unknown;
  try {
    raw = await c.req.json();
  } catch (error) {
    throw new HttpError(400, `Malformed JSON body: ${(error as Error).message}`);
  }
  const bad = unstorablePath(raw);
  if (bad) throw new HttpError(422, `${bad.path}: ${bad.reason}`);
  return raw;
}

/** Parses a JSON body against `schema`; malformed JSON is a 400, anything the schema refuses a 422, with the reason. */
export async function jsonBody<T extends z.ZodType>(c: Context, schema: T): Promise<z.infer<T>> {
  const parsed = schema.safeParse(await readJson(c));
  if (!parsed.success) throw new HttpError(422, zodMessage(parsed.error));
  return parsed.data;
}

/** A JSON body that may be absent (no content): absent is `{}`. */
export async function optionalBody<T extends z.ZodType>(c: Context, schema: T): Promise<z.infer<T>> {
  const length = c.req.header("content-length");
  const present = (length !== undefined && length !== "0") || c.req.header("transfer-encoding") !== undefined;
  return present ? jsonBody(c, schema) : schema.parse({});
}

const NoBody = z.strictObject({});

/**
 * For routes that take no body (DELETE, cancel, token and session POSTs): none, or `{}`. Anything else is refused
 * (400 malformed, 422 with the unknown fields) instead of being ignored while the route acts, so a client that
 * meant to send options learns that they do not exist.
 */
export async function noBody(c: Context): Promise<void> {
  await optionalBody(c, NoBody);
}

/**
 * True when the raw request target has a `.` or `..` segment (also spelled `%2e`): URL parsing resolves those
 * before routing, so `.../nodes/../cancel` would reach another route (the pipeline's cancel) than the one
 * written. No client sends them (browsers and fetch resolve them first); they are traversal probes.
 */
export function hasDotSegment(rawTarget: string): boolean {
  const path = rawTarget.split(/[?#]/, 1)[0] ?? "";
  return path.split("/").some((segment) => /^(?:\.|%2e){1,2}$/i.test(segment));
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
      bucket: z
        .string()
        .regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "must be a valid S3 bucket name")
        .optional(),
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

export const CreateNodeBody = z.strictObject({
  id: Id.optional(),
  title: Title,
  type: NodeType,
  inputs: NodeInputs.default({}),
  config: z.record(z.string(), z.unknown()).default({}),
  asset: AssetInput.optional(),
  /** Canvas position (the editor's). */
  position: NodePosition.optional(),
  /** Switched off: runs skip it and what is downstream of it. */
  disabled: z.boolean().optional(),
});

export const UpdateNodeBody = z
  .strictObject({
    title: Title.optional(),
    inputs: NodeInputs.optional(),
    /** Merged into config; a key set to null is removed (JSON merge patch). */
    config: z.record(z.string(), z.unknown()).optional(),
    /** Merged into the asset; `variable: null` unbinds it from its variable. */
    asset: AssetInput.partial().extend({ variable: VariableName.nullable().optional() }).optional(),
    /** Canvas position: its own column, never a config change. */
    position: NodePosition.optional(),
    /** Switches the node off (true) or on (false): runs skip a disabled node and what is downstream of it. */
    disabled: z.boolean().optional(),
  })
  .refine((b) => Object.values(b).some((v) => v !== undefined), "nothing to update (title, inputs, config, asset, position or disabled)");

/** Keys of an uploaded file in the asset column (set by the upload route). */
const UPLOAD_FIELDS = ["source", "size", "contentType", "name", "uploadedAt"] as const;

/**
 * The asset patch to write for a PATCH of an asset node. An asset has one origin, the last one set: a url
 * drops an earlier upload and inline content; inline content, or a change to text/json, drops a url (the
 * upload route drops a url too). Cleared keys are written as null (the column takes partial writes only;
 * readers treat null as absent). Whether the result fits (a url on a text asset) is nodeFieldProblems' call.
 */
export function assetPatchFor(current: unknown, patch: z.infer<typeof UpdateNodeBody>["asset"] & object): Record<string, unknown> {
  const existing = (current && typeof current === "object" ? current : {}) as Record<string, unknown>;
  const type = patch.type ?? existing.type;
  if (patch.url !== undefined) {
    const cleared = [...UPLOAD_FIELDS, "content"].filter(
      (key) => (patch as Record<string, unknown>)[key] === undefined && existing[key] !== undefined && existing[key] !== null,
    );
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
