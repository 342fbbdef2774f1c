import { z } from "zod";
import { CONFIG_SCHEMAS, type NodeType } from "@vp/contracts";
import { fieldLabel } from "./node-types";

/**
 * The node panel's config form, generated from the contracts' config schema of the node type (zod 4,
 * through its JSON Schema), so a field added to packages/contracts appears in the editor by itself.
 * Values are validated with the same zod schema the gateway applies before anything is saved.
 */
export type FieldKind = "enum" | "number" | "text" | "boolean" | "number-list" | "json";

export interface ConfigField {
  key: string;
  label: string;
  kind: FieldKind;
  description?: string;
  options?: string[];
  integer?: boolean;
  min?: number;
  max?: number;
  multiline?: boolean;
  maxLength?: number;
}

interface JsonSchema {
  type?: string | string[];
  enum?: unknown[];
  description?: string;
  minimum?: number;
  maximum?: number;
  maxLength?: number;
  items?: JsonSchema;
  properties?: Record<string, JsonSchema>;
  anyOf?: JsonSchema[];
}

const SAFE = 9007199254740991;

function fieldOf(key: string, schema: JsonSchema): ConfigField {
  const base = { key, label: fieldLabel(key), description: schema.description };
  const variants = schema.anyOf?.filter((v) => v.type !== "null");
  if (variants?.length === 1) return fieldOf(key, { ...variants[0], description: schema.description ?? variants[0]!.description });
  if (Array.isArray(schema.enum) && schema.enum.every((v) => typeof v === "string")) return { ...base, kind: "enum", options: schema.enum as string[] };
  switch (schema.type) {
    case "integer":
    case "number":
      return {
        ...base,
        kind: "number",
        integer: schema.type === "integer",
        min: schema.minimum !== undefined && Math.abs(schema.minimum) < SAFE ? schema.minimum : undefined,
        max: schema.maximum !== undefined && Math.abs(schema.maximum) < SAFE ? schema.maximum : undefined,
      };
    case "string":
      return { ...base, kind: "text", maxLength: schema.maxLength, multiline: (schema.maxLength ?? 0) > 300 };
    case "boolean":
      return { ...base, kind: "boolean" };
    case "array":
      if (schema.items?.type === "integer" || schema.items?.type === "number") return { ...base, kind: "number-list" };
      return { ...base, kind: "json" };
    default:
      return { ...base, kind: "json" };
  }
}

const cache = new Map<NodeType, ConfigField[]>();

export function configFields(type: NodeType): ConfigField[] {
  const cached = cache.get(type);
  if (cached) return cached;
  const json = z.toJSONSchema(CONFIG_SCHEMAS[type], { io: "input", unrepresentable: "any" }) as JsonSchema;
  const fields = Object.entries(json.properties ?? {}).map(([key, schema]) => fieldOf(key, schema));
  cache.set(type, fields);
  return fields;
}

/** What an input shows for a stored value. */
export function toRaw(field: ConfigField, value: unknown): string {
  if (value === undefined || value === null) return "";
  switch (field.kind) {
    case "number-list":
      return Array.isArray(value) ? value.join(", ") : String(value);
    case "json":
      return JSON.stringify(value, null, 2);
    case "boolean":
      return value ? "true" : "false";
    default:
      return String(value);
  }
}

type Parsed = { ok: true; value: unknown } | { ok: false; error: string };

function parseRaw(field: ConfigField, raw: string): Parsed {
  const text = raw.trim();
  if (text === "") return { ok: true, value: undefined };
  switch (field.kind) {
    case "number": {
      const n = Number(text);
      return Number.isFinite(n) ? { ok: true, value: n } : { ok: false, error: "must be a number" };
    }
    case "boolean":
      return { ok: true, value: text === "true" };
    case "number-list": {
      const parts = text
        .split(/[\s,]+/)
        .filter(Boolean)
        .map(Number);
      return parts.every(Number.isFinite) ? { ok: true, value: parts } : { ok: false, error: "must be numbers separated by commas" };
    }
    case "json":
      try {
        return { ok: true, value: JSON.parse(text) };
      } catch (error) {
        return { ok: false, error: `must be valid JSON (${(error as Error).message})` };
      }
    default:
      return { ok: true, value: field.kind === "text" ? raw : text };
  }
}

export interface FormResult {
  /** The config the form describes (keys with empty inputs left out). */
  config: Record<string, unknown>;
  /** Per field key, the first problem (parse or schema). Empty when the config may be saved. */
  errors: Record<string, string>;
}

/**
 * Parses the raw inputs over the stored config (keys without a field are kept as they are) and validates
 * the result with the node type's config schema.
 */
export function evaluateForm(type: NodeType, stored: Record<string, unknown>, raw: Record<string, string>): FormResult {
  const fields = configFields(type);
  const config: Record<string, unknown> = { ...stored };
  const errors: Record<string, string> = {};
  for (const field of fields) {
    if (!(field.key in raw)) continue;
    const parsed = parseRaw(field, raw[field.key]!);
    if (!parsed.ok) errors[field.key] = parsed.error;
    else if (parsed.value === undefined) delete config[field.key];
    else config[field.key] = parsed.value;
  }
  const result = CONFIG_SCHEMAS[type].safeParse(config);
  if (!result.success) {
    for (const issue of result.error.issues) {
      const key = String(issue.path[0] ?? "");
      if (!errors[key]) errors[key] = issue.path.length > 1 ? `${issue.path.slice(1).join(".")}: ${issue.message}` : issue.message;
    }
  }
  return { config, errors };
}

/** The PATCH body turning `stored` into `next`: changed keys, and null for removed ones (merge patch). */
export function configPatch(stored: Record<string, unknown>, next: Record<string, unknown>): Record<string, unknown> | null {
  const patch: Record<string, unknown> = {};
  for (const key of new Set([...Object.keys(stored), ...Object.keys(next)])) {
    if (!(key in next)) patch[key] = null;
    else if (JSON.stringify(stored[key]) !== JSON.stringify(next[key])) patch[key] = next[key];
  }
  return Object.keys(patch).length ? patch : null;
}
