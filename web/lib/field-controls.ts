import type { NodeType } from "@vp/contracts";
import { isAiType } from "./ai";
import { fieldLabel } from "./node-types";
import type { ConfigField } from "./schema-form";

/**
 * Which input the config form shows for a field: a few fields of particular node types get their own (the code
 * animation's code and language, an AI node's provider, compose-video's overlays); the rest follow the field's kind.
 */
export type FieldControl = "code" | "language" | "provider" | "overlays" | "choice" | "multiline" | "text";

export function fieldControl(type: NodeType, field: ConfigField): FieldControl {
  if (type === "render-code" && field.key === "code") return "code";
  if (type === "render-code" && field.key === "language") return "language";
  if (isAiType(type) && field.key === "provider") return "provider";
  if (type === "compose-video" && field.key === "overlays") return "overlays";
  if (field.kind === "enum" || field.kind === "boolean") return "choice";
  if (field.kind === "json" || field.multiline) return "multiline";
  return "text";
}

/** Languages the code animation's editor highlights (config.language is free text up to 40 chars). */
export const LANGUAGES = ["javascript", "typescript", "jsx", "tsx", "python", "text"] as const;

/** The language picker's options: the highlighted languages, plus a stored one it does not know. */
export function languageOptions(value: string): readonly string[] {
  return LANGUAGES.includes(value as (typeof LANGUAGES)[number]) || value === "" ? LANGUAGES : [...LANGUAGES, value];
}

/** A select's options: true/false for a boolean, the schema's values for an enum. */
export function choiceOptions(field: ConfigField): string[] {
  return field.kind === "boolean" ? ["true", "false"] : (field.options ?? []);
}

/** The placeholder of a text input: a number's range ("whole number 1–60"), an example list, or nothing. */
export function textHint(field: ConfigField): string {
  if (field.kind === "number" && (field.min !== undefined || field.max !== undefined)) {
    return `${field.integer ? "whole number " : ""}${field.min ?? "…"}–${field.max ?? "…"}`;
  }
  return field.kind === "number-list" ? "e.g. 1, 4, 5" : "";
}

/** Overlay errors name the card and field ("Overlay 1 size: …") rather than the JSON path ("0.size: …"). */
export function overlayError(error: string): string {
  const match = /^(\d+)\.(\w+): (.*)$/.exec(error);
  if (!match) return error;
  return `Overlay ${Number(match[1]) + 1} ${fieldLabel(match[2]!).toLowerCase()}: ${match[3]}`;
}
