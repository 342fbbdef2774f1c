import { MEDIA_VARIABLE_TYPES, type MediaType, type Variable, type VariableValues } from "@vp/contracts";
import { upstreamIds, type Problem } from "./index";

/**
 * Variables in a pipeline's nodes: `{{name}}` placeholders in text assets and string config fields, and media
 * assets bound to a variable. Browser-safe (the editor highlights and checks placeholders with the same rules).
 */

/** `{{name}}`, spaces allowed inside the braces. */
const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_]{0,39})\s*\}\}/g;

/** What variables reads of a node. */
export interface VariableNode {
  id: string;
  title?: string;
  inputs?: Record<string, string[]>;
  config?: Record<string, unknown> | null;
  asset?: { type?: MediaType | string; content?: unknown; variable?: unknown } | Record<string, unknown> | null;
}

/** The placeholder names in a text, in order of appearance, each once. */
export function placeholdersIn(text: string): string[] {
  return [...new Set([...text.matchAll(PLACEHOLDER)].map((m) => m[1]!))];
}

/** The text with each placeholder of a known value replaced by it (a number as JavaScript writes it); others left as they are. */
export function substitute(text: string, values: VariableValues): string {
  return text.replace(PLACEHOLDER, (whole, name: string) => (Object.hasOwn(values, name) ? String(values[name]) : whole));
}

/** Where a node holds text: its text asset's content ("asset") and every string in its config, by path ("config.style.font"). */
export function textFieldsOf(node: VariableNode): Array<{ field: string; text: string }> {
  const fields: Array<{ field: string; text: string }> = [];
  const asset = node.asset as { type?: unknown; content?: unknown } | null | undefined;
  if (asset && typeof asset.content === "string") fields.push({ field: "asset", text: asset.content });
  const walk = (value: unknown, path: string) => {
    if (typeof value === "string") fields.push({ field: path, text: value });
    else if (Array.isArray(value)) for (const [i, v] of value.entries()) walk(v, `${path}.${i}`);
    else if (value && typeof value === "object") for (const [k, v] of Object.entries(value)) walk(v, `${path}.${k}`);
  };
  walk(node.config ?? {}, "config");
  return fields;
}

/** The variable a media asset is bound to, if any. */
export function boundVariable(node: VariableNode): string | undefined {
  const v = (node.asset as { variable?: unknown } | null | undefined)?.variable;
  return typeof v === "string" ? v : undefined;
}

/** The variables a node uses itself (placeholders and a bound asset), each once. */
export function variablesUsedBy(node: VariableNode): string[] {
  const names = new Set(textFieldsOf(node).flatMap((f) => placeholdersIn(f.text)));
  const bound = boundVariable(node);
  if (bound) names.add(bound);
  return [...names];
}

/**
 * Every problem of the nodes' placeholders and bindings against the declared variables, node by node (one 422
 * lists them all, in the style of graph problems): an unknown variable, a media variable placed in text, an
 * asset bound to a variable of another type or bound while it is not a media asset.
 */
export function variableProblems(nodes: Iterable<VariableNode>, variables: readonly Variable[]): Problem[] {
  const byName = new Map(variables.map((v) => [v.name, v]));
  const problems: Problem[] = [];
  for (const node of nodes) {
    for (const { field, text } of textFieldsOf(node)) {
      for (const name of placeholdersIn(text)) {
        const v = byName.get(name);
        if (!v) problems.push({ nodeId: node.id, slot: field, message: `${field} uses {{${name}}}, which is not a variable of this pipeline` });
        else if (v.type !== "text" && v.type !== "number")
          problems.push({
            nodeId: node.id,
            slot: field,
            message: `${field} uses {{${name}}}, a ${v.type} variable: only text and number variables go into text`,
          });
      }
    }
    const bound = boundVariable(node);
    if (bound === undefined) continue;
    const assetType = (node.asset as { type?: unknown } | null | undefined)?.type;
    const v = byName.get(bound);
    if (!v) problems.push({ nodeId: node.id, slot: "asset", message: `the asset is bound to "${bound}", which is not a variable of this pipeline` });
    else if (!(MEDIA_VARIABLE_TYPES as readonly string[]).includes(String(assetType)))
      problems.push({
        nodeId: node.id,
        slot: "asset",
        message: `only a video, audio or image asset can be bound to a variable; this one is ${String(assetType)}`,
      });
    else if (v.type !== assetType)
      problems.push({
        nodeId: node.id,
        slot: "asset",
        message: `${assetType === "audio" ? "an" : "a"} ${String(assetType)} asset cannot be bound to "${bound}", a ${v.type} variable`,
      });
  }
  return problems;
}

/** The text and number variables' defaults, by name. */
export function defaultValues(variables: readonly Variable[]): VariableValues {
  const values: VariableValues = {};
  for (const v of variables) if (v.default !== undefined) values[v.name] = v.default;
  return values;
}

/**
 * The node with its placeholders filled from `values` (text asset content and every string in its config), for
 * its job and its cache key: a node that uses no variable comes back unchanged (the same object).
 */
export function resolveNode<N extends VariableNode>(node: N, values: VariableValues): N {
  const fields = textFieldsOf(node);
  if (!fields.some((f) => placeholdersIn(f.text).length)) return node;
  const fill = (value: unknown): unknown => {
    if (typeof value === "string") return substitute(value, values);
    if (Array.isArray(value)) return value.map(fill);
    if (value && typeof value === "object") return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, fill(v)]));
    return value;
  };
  const asset = node.asset as Record<string, unknown> | null | undefined;
  return {
    ...node,
    config: node.config ? (fill(node.config) as Record<string, unknown>) : node.config,
    asset: asset && typeof asset.content === "string" ? { ...asset, content: substitute(asset.content, values) } : node.asset,
  };
}

/** Placeholders a run cannot fill: used by `nodes` and neither given in `values` nor defaulted (one problem per node and variable). */
export function unfilledProblems(nodes: Iterable<VariableNode>, variables: readonly Variable[], values: VariableValues): Problem[] {
  const textual = new Map(variables.filter((v) => v.type === "text" || v.type === "number").map((v) => [v.name, v]));
  const problems: Problem[] = [];
  for (const node of nodes)
    for (const name of variablesUsedBy(node))
      if (textual.has(name) && !Object.hasOwn(values, name) && textual.get(name)!.default === undefined)
        problems.push({ nodeId: node.id, message: `uses {{${name}}}, which has no default and no value in this run` });
  return problems;
}

/** The nodes whose work depends on a variable, themselves or through any input: the rest is the same in every batch row. */
export function variableDependents(nodes: ReadonlyMap<string, VariableNode>): Set<string> {
  const direct = new Set([...nodes.values()].filter((n) => variablesUsedBy(n).length).map((n) => n.id));
  const dependent = new Set<string>();
  const visit = (id: string, trail: Set<string>): boolean => {
    if (dependent.has(id) || direct.has(id)) return true;
    if (trail.has(id)) return false;
    trail.add(id);
    return upstreamIds({ inputs: nodes.get(id)?.inputs ?? {} }).some((up) => nodes.has(up) && visit(up, trail));
  };
  for (const id of nodes.keys()) if (visit(id, new Set())) dependent.add(id);
  return dependent;
}
