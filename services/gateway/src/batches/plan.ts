import { AssetUrl, type Variable, Variables, type VariableValues } from "@vp/contracts";
import type { ImportPipelineInput, NewBatchRow, NodeRow } from "@vp/db";
import { blockedByDisabled, estimateNodeCost, type EstimatedNode } from "@vp/flow-graph";
import { boundVariable, defaultValues, resolveNode, variableDependents, type VariableNode } from "@vp/flow-graph/variables";

/**
 * A batch's plan, before anything is written: every row checked against the template's variables (all problems at
 * once), each row's pipeline as a clone of the template, and the estimate with the work no variable reaches counted
 * once.
 */

/** Most rows one batch may have: each row is a pipeline of its own. */
export const MAX_BATCH_ROWS = 1000;

/** A row as sent: column (variable name) -> cell. */
export type RawRow = Record<string, unknown>;

/** A problem of one row's cell (row is 1-based). */
export interface RowProblem {
  row: number;
  column: string;
  message: string;
}

/** What one row fills: text and number values (the row pipeline's defaults) and media URLs (its bound assets). */
export interface RowValues {
  /** Every value the row gave, as the batch shows it. */
  values: Record<string, string | number>;
  /** Text and number variables with the row's value or the default. */
  text: VariableValues;
  /** Media variable -> http(s) URL, for the assets bound to it. */
  media: Record<string, string>;
}

const isEmpty = (cell: unknown) => cell === null || cell === undefined || (typeof cell === "string" && cell.trim() === "");

/** A media variable has a file of its own when an asset bound to it has an upload or a URL (used when a row gives none). */
function mediaWithOwnFile(nodes: readonly VariableNode[]): Set<string> {
  const own = new Set<string>();
  for (const node of nodes) {
    const bound = boundVariable(node);
    const asset = node.asset as { source?: unknown; url?: unknown } | null | undefined;
    if (bound && (typeof asset?.source === "string" || typeof asset?.url === "string")) own.add(bound);
  }
  return own;
}

/** The template's variables as declared; a column the database holds but the schema refuses is reported, not used. */
export function parseVariables(raw: unknown): { variables: Variable[]; problem?: string } {
  const parsed = Variables.safeParse(raw ?? []);
  if (parsed.success) return { variables: parsed.data };
  return { variables: [], problem: `The pipeline's variables are invalid: ${parsed.error.issues[0]?.message ?? "unknown problem"}` };
}

/**
 * Every row checked against the variables: an unknown column, a missing column or empty cell for a variable that has
 * no default (a media variable: no file of its own), a number column that is not a number, a media cell that is not
 * an http(s) URL. Empty cells take the default. Returns every problem, or each row's values when there are none.
 */
export function checkRows(
  rows: readonly RawRow[],
  variables: readonly Variable[],
  nodes: readonly VariableNode[],
): { ok: true; rows: RowValues[] } | { ok: false; problems: RowProblem[] } {
  const byName = new Map(variables.map((v) => [v.name, v]));
  const ownFile = mediaWithOwnFile(nodes);
  const defaults = defaultValues(variables);
  const known = variables.map((v) => v.name).join(", ") || "none";
  const problems: RowProblem[] = [];
  const out: RowValues[] = [];
  rows.forEach((raw, i) => {
    const row = i + 1;
    const values: Record<string, string | number> = {};
    const text: VariableValues = { ...defaults };
    const media: Record<string, string> = {};
    for (const column of Object.keys(raw)) {
      if (!byName.has(column)) problems.push({ row, column, message: `"${column}" is not a variable of this pipeline (its variables: ${known})` });
    }
    for (const v of variables) {
      const present = Object.hasOwn(raw, v.name);
      const cell = raw[v.name];
      const media_ = v.type !== "text" && v.type !== "number";
      const hasFallback = media_ ? ownFile.has(v.name) : v.default !== undefined;
      if (!present || isEmpty(cell)) {
        if (!hasFallback) {
          const why = media_ ? "and its bound asset has no file of its own" : "and it has no default";
          problems.push({
            row,
            column: v.name,
            message: present ? `"${v.name}" is empty ${why}` : `no "${v.name}" column, ${why}`,
          });
        }
        continue;
      }
      if (v.type === "number") {
        const n = typeof cell === "number" ? cell : typeof cell === "string" ? Number(cell.trim()) : Number.NaN;
        if (!Number.isFinite(n)) problems.push({ row, column: v.name, message: `"${v.name}" must be a number, not ${JSON.stringify(cell)}` });
        else values[v.name] = text[v.name] = n;
      } else if (v.type === "text") {
        if (typeof cell !== "string" && typeof cell !== "number") problems.push({ row, column: v.name, message: `"${v.name}" must be text` });
        else if (String(cell).length > 100_000) problems.push({ row, column: v.name, message: `"${v.name}" is longer than 100000 characters` });
        else values[v.name] = text[v.name] = String(cell);
      } else {
        const url = typeof cell === "string" ? AssetUrl.safeParse(cell.trim()) : null;
        if (!url?.success) {
          const reason = url ? (url.error.issues[0]?.message ?? "is not a valid URL") : "must be an http:// or https:// URL";
          problems.push({ row, column: v.name, message: `"${v.name}" (a ${v.type} variable) ${reason}` });
        } else values[v.name] = media[v.name] = url.data;
      }
    }
    out.push({ values, text, media });
  });
  return problems.length ? { ok: false, problems } : { ok: true, rows: out };
}

/** The template's nodes as a row pipeline gets them; media assets bound to a variable the row gives take its URL. */
export function cloneNodes(template: readonly NodeRow[], media: Record<string, string>): ImportPipelineInput["nodes"] {
  return template.map((n) => {
    const bound = boundVariable(n);
    const asset = bound && Object.hasOwn(media, bound) ? { type: (n.asset as { type: string }).type, url: media[bound]!, variable: bound } : n.asset;
    return {
      id: n.id,
      title: n.title,
      type: n.type,
      inputs: n.inputs ?? {},
      config: n.config ?? {},
      asset: (asset ?? null) as Record<string, unknown> | null,
      position: n.position ?? null,
      disabled: n.disabled === true,
    };
  });
}

/** A row's pipeline and its variables (defaults set to the row's text and number values). */
export function rowPipeline(
  template: { title: string; config: Record<string, unknown> },
  nodes: readonly NodeRow[],
  variables: readonly Variable[],
  row: RowValues,
  index: number,
  id: string,
): NewBatchRow {
  const suffix = ` · row ${index}`;
  return {
    index,
    values: row.values,
    pipeline: {
      pipeline: { id, title: `${template.title.slice(0, 200 - suffix.length)}${suffix}`, config: template.config ?? {} },
      nodes: cloneNodes(nodes, row.media),
    },
    variables: variables.map((v) => (Object.hasOwn(row.text, v.name) && (v.type === "text" || v.type === "number") ? { ...v, default: row.text[v.name] } : v)),
  };
}

/** A batch's estimate in US dollars: `shared` once, each row's own work (`perRow`: their average), and what sharing saves. */
export interface BatchEstimate {
  total: number;
  shared: number;
  perRow: number;
  rows: number;
  /** What the shared work would have cost again in every row after the first. */
  saved: number;
  maxCost: number | null;
  withinBudget: boolean;
  /** Node ids whose work depends on no variable: made once for the whole batch. */
  sharedNodeIds: string[];
}

const cents = (n: number) => Math.round(n * 1e6) / 1e6;

/**
 * The estimate: the template's members (disabled nodes and what they feed left out) priced as a run prices them,
 * with each row's values filled in; nodes no variable reaches (variableDependents) are priced once.
 */
export function estimateBatch(nodes: readonly NodeRow[], variables: readonly Variable[], rows: readonly RowValues[], maxCost: number | null): BatchEstimate {
  const blocked = blockedByDisabled(nodes);
  const members = nodes.filter((n) => !blocked.has(n.id));
  const dependents = variableDependents(new Map(nodes.map((n) => [n.id, n as VariableNode])));
  const priced = (values: VariableValues, ids: (n: NodeRow) => boolean) => {
    const resolved = new Map(nodes.map((n) => [n.id, resolveNode(n as unknown as EstimatedNode & VariableNode, values) as EstimatedNode]));
    return members.filter(ids).reduce((sum, n) => sum + estimateNodeCost(resolved.get(n.id)!, resolved), 0);
  };
  const shared = cents(priced(defaultValues(variables), (n) => !dependents.has(n.id)));
  const own = rows.map((r) => priced(r.text, (n) => dependents.has(n.id)));
  const ownTotal = own.reduce((a, b) => a + b, 0);
  const total = cents(shared + ownTotal);
  return {
    total,
    shared,
    perRow: cents(rows.length ? ownTotal / rows.length : 0),
    rows: rows.length,
    saved: cents(shared * Math.max(0, rows.length - 1)),
    maxCost,
    withinBudget: maxCost === null || total <= maxCost,
    sharedNodeIds: members.filter((n) => !dependents.has(n.id)).map((n) => n.id),
  };
}

/** The node whose output is a row's result when none is named: the last node (in the template's order) that feeds no other. */
export function defaultOutputNode(nodes: readonly NodeRow[]): string | null {
  const feeding = new Set(nodes.flatMap((n) => Object.values(n.inputs ?? {}).flat()));
  const sinks = nodes.filter((n) => !feeding.has(n.id) && n.disabled !== true);
  return sinks.at(-1)?.id ?? null;
}
