import { z } from "zod";

/**
 * A pipeline's variables: what changes from one video to the next (a customer's name, a product clip). Text assets
 * and string config fields may hold `{{name}}` placeholders of text and number variables; a media asset may be
 * bound to a media variable (its `variable` field), whose value per batch row is an upload or an http(s) URL.
 * A plain run uses the defaults; a variable without a default must get a value from each batch row.
 */
export const VARIABLE_TYPES = ["text", "number", "video", "audio", "image"] as const;
export type VariableType = (typeof VARIABLE_TYPES)[number];
export const MEDIA_VARIABLE_TYPES = ["video", "audio", "image"] as const satisfies readonly VariableType[];

export const MAX_VARIABLES = 50;
export const VARIABLE_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,39}$/;

export const VariableName = z.string().regex(VARIABLE_NAME_PATTERN, "must start with a letter or _, then letters, digits or _ (at most 40 characters)");

export const Variable = z
  .strictObject({
    name: VariableName,
    type: z.enum(VARIABLE_TYPES),
    /** A text or number variable's value when a run does not give one; media variables use their bound asset's own file. */
    default: z.union([z.string().max(100_000), z.number().finite()]).optional(),
    description: z.string().max(500).optional(),
  })
  .superRefine((v, ctx) => {
    if (v.default === undefined) return;
    if (v.type === "number" && typeof v.default !== "number")
      ctx.addIssue({ code: "custom", path: ["default"], message: "must be a number for a number variable" });
    if (v.type === "text" && typeof v.default !== "string") ctx.addIssue({ code: "custom", path: ["default"], message: "must be text for a text variable" });
    if (v.type !== "text" && v.type !== "number")
      ctx.addIssue({ code: "custom", path: ["default"], message: `a ${v.type} variable has no default: its bound asset's own file is used` });
  });
export type Variable = z.infer<typeof Variable>;

export const Variables = z
  .array(Variable)
  .max(MAX_VARIABLES, `at most ${MAX_VARIABLES} variables`)
  .superRefine((list, ctx) => {
    const seen = new Set<string>();
    for (const [i, v] of list.entries()) {
      if (seen.has(v.name)) ctx.addIssue({ code: "custom", path: [i, "name"], message: `"${v.name}" is declared twice` });
      seen.add(v.name);
    }
  });

/** One run's values: text and number variables by name; a media variable's value is an http(s) URL or an uploaded file's storage key. */
export type VariableValues = Record<string, string | number>;
