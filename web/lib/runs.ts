import type { GraphProblem, NodeEstimate, NodeStatus, RunEstimate, RunRecord } from "@vp/contracts";
import { checkPipeline, selectRunMembers, type GraphNode } from "@vp/flow-graph";
import { estimateNode } from "./ai";
import { ApiError, errorMessage } from "./api";
import { exactCost } from "./format";
import type { EditorNode } from "./graph-state";

/**
 * The editor's side of pipeline runs: graph problems per node, the estimate before a run (the
 * gateway's when it answers, else one computed here from the same price table), and run history rows.
 * Pure functions of the model, so they are unit-testable and cheap to recompute on every change.
 */

export type ProblemsByNode = ReadonlyMap<string, GraphProblem[]>;

/** Problems grouped by node, in the order given. */
export function groupProblems(problems: Iterable<GraphProblem>): ProblemsByNode {
  const byNode = new Map<string, GraphProblem[]>();
  for (const p of problems) byNode.set(p.nodeId, [...(byNode.get(p.nodeId) ?? []), p]);
  return byNode;
}

/**
 * What "Run all" would be refused for right now: the same whole-pipeline check the gateway runs (every node
 * that is not completed), so the offending nodes are marked before anything is sent.
 */
export function pipelineProblems(nodes: ReadonlyMap<string, EditorNode>): GraphProblem[] {
  // What run all would check: disabled nodes and what is downstream of them are not part of it.
  return checkPipeline([...nodes.values()] as GraphNode[], runMembers(nodes));
}

/** "input \"segments\" needs…" reads better as "Input \"segments\" needs…" on its own line. */
export function problemText(p: GraphProblem): string {
  return p.message.charAt(0).toUpperCase() + p.message.slice(1);
}

/** The nodes a run would include: every node not completed, or `target` and what it needs first. */
export function runMembers(nodes: ReadonlyMap<string, EditorNode>, target?: string): string[] {
  return selectRunMembers([...nodes.values()], target ? [target] : undefined);
}

/** Where the estimate on screen came from: the gateway (cache-aware), or the browser (price table only). */
export type ShownEstimate = RunEstimate & { origin: "gateway" | "browser" };

/**
 * The estimate when the gateway has no estimate route (or cannot be asked): every member priced by the shared
 * price table, completed nodes up to date. It knows nothing about the cache, so it never claims a saving.
 */
export function browserEstimate(nodes: ReadonlyMap<string, EditorNode>, maxCost: number | null): ShownEstimate {
  const members = new Set(runMembers(nodes));
  const estimates: NodeEstimate[] = [];
  for (const node of nodes.values()) {
    if (!members.has(node.id)) {
      estimates.push({ nodeId: node.id, type: node.type, estimatedCost: 0, source: "up-to-date" });
      continue;
    }
    const usd = estimateNode(node, nodes)?.usd ?? 0;
    estimates.push({ nodeId: node.id, type: node.type, estimatedCost: usd, source: "execute" });
  }
  const total = estimates.reduce((sum, n) => sum + n.estimatedCost, 0);
  return {
    estimatedTotalCost: total,
    maxCost,
    withinBudget: maxCost === null || total <= maxCost,
    costSaved: 0,
    nodes: estimates,
    origin: "browser",
  };
}

export function estimateCounts(estimate: RunEstimate): { execute: number; cached: number; upToDate: number } {
  const counts = { execute: 0, cached: 0, upToDate: 0 };
  for (const n of estimate.nodes) {
    if (n.source === "execute") counts.execute += 1;
    else if (n.source === "cached") counts.cached += 1;
    else counts.upToDate += 1;
  }
  return counts;
}

/** A budget as it was typed: whole cents as "$0.05", finer amounts in full ("$0.0001"). */
export function formatBudget(usd: number | null): string {
  if (usd === null) return "none";
  return exactCost(usd);
}

/** The pipeline's budget (config.maxCost in USD), null when it has none. */
export function budgetOf(config: Record<string, unknown> | undefined | null): number | null {
  const value = config?.maxCost;
  return typeof value === "number" && Number.isFinite(value) ? value : null;
}

export const RUN_KIND_LABEL: Record<RunRecord["kind"], string> = { all: "Run all", upstream: "Run to here", retry: "Retry" };

export interface RunRow {
  id: string;
  kind: RunRecord["kind"];
  /** "Run all", "Run to here · Final cut", "Retry · Merge (with dependants)". */
  label: string;
  status: RunRecord["status"];
  total: number;
  counts: Record<"completed" | "failed" | "cancelled" | "running" | "waiting", number>;
  executed?: number;
  cached?: number;
  upToDate?: number;
  totalCost?: number;
  costSaved?: number;
  estimatedTotalCost?: number;
  startedAt: string;
  finishedAt: string | null;
}

const num = (v: unknown): number | undefined => (typeof v === "number" && Number.isFinite(v) ? v : undefined);

/**
 * One row of the run history. A finished run's counts are the ones the scheduler recorded; a running run's
 * are read from the live node statuses of its members (the SSE stream moves them before the run record).
 */
export function runRow(run: RunRecord, nodes: ReadonlyMap<string, EditorNode>): RunRow {
  const m = run.metadata ?? {};
  const recorded = (m.counts ?? null) as Partial<Record<string, number>> | null;
  const counts = { completed: 0, failed: 0, cancelled: 0, running: 0, waiting: 0 };
  if (recorded && run.status !== "running") {
    for (const k of Object.keys(counts) as Array<keyof typeof counts>) counts[k] = num(recorded[k]) ?? 0;
  } else {
    for (const id of run.node_ids) counts[bucket(nodes.get(id)?.status)] += 1;
  }
  const estimate = m.estimate as RunEstimate | undefined;
  const target = run.target_node_id ? (nodes.get(run.target_node_id)?.title ?? run.target_node_id) : null;
  const withDependants = run.kind === "retry" && run.node_ids.length > 1 ? " and dependants" : "";
  return {
    id: run.id,
    kind: run.kind,
    label: target ? `${RUN_KIND_LABEL[run.kind]} · ${target}${withDependants}` : RUN_KIND_LABEL[run.kind],
    status: run.status,
    total: run.node_ids.length,
    counts,
    executed: num(m.executed),
    cached: num(m.cached),
    upToDate: num(m.upToDate),
    totalCost: num(m.totalCost),
    costSaved: num(m.costSaved) ?? num(estimate?.costSaved),
    estimatedTotalCost: num(estimate?.estimatedTotalCost),
    startedAt: run.created_at,
    finishedAt: run.finished_at,
  };
}

function bucket(status: NodeStatus | undefined): "completed" | "failed" | "cancelled" | "running" | "waiting" {
  switch (status) {
    case "completed":
    case "failed":
    case "cancelled":
      return status;
    case "queued":
    case "in_progress":
      return "running";
    default:
      return "waiting";
  }
}

/** A string that changes whenever a node's status does: the run history refetches on it. */
export function statusSignature(nodes: ReadonlyMap<string, EditorNode>): string {
  let s = "";
  for (const n of nodes.values()) s += `${n.id}:${n.status};`;
  return s;
}

/** A string that changes with the graph's structure (ids, inputs, assets, config): stale server problems go. */
export function structureSignature(nodes: ReadonlyMap<string, EditorNode>): string {
  return JSON.stringify([...nodes.values()].map((n) => [n.id, n.type, n.inputs, n.asset, n.config, n.status === "completed"]));
}

/**
 * A string that changes whenever a node's result may have become outdated or current: its type, inputs, asset and
 * config, and which result it holds. Titles, positions and progress do not change it.
 */
export function outdatedSignature(nodes: ReadonlyMap<string, EditorNode>): string {
  return JSON.stringify(
    [...nodes.values()].map((n) => [n.id, n.type, n.inputs, n.asset, n.config, n.status, n.status === "completed" ? (n.output?.s3Key ?? null) : null]),
  );
}

/** Whether a node completed from the cache, and what that saved. */
export function cacheInfo(node: EditorNode): { cached: true; costSaved: number; from?: { pipelineId: string; nodeId: string; runId?: string | null } } | null {
  const m = node.metadata;
  if (!m?.cached || node.status !== "completed") return null;
  return { cached: true, costSaved: m.costSaved ?? 0, from: m.cachedFrom };
}

/** Why the gateway refused a run: its message, and the problems or per-node estimate it listed. */
export interface Refusal {
  message: string;
  action: string;
  problems?: GraphProblem[];
  estimate?: RunEstimate;
}

export type GatewayEstimate =
  | { phase: "idle" }
  | { phase: "loading" }
  | { phase: "ok"; estimate: RunEstimate; problems: GraphProblem[] }
  /** The gateway has no estimate route (older gateway): the browser's price-table estimate is shown. */
  | { phase: "missing" }
  | { phase: "error"; message: string };

/** A refused run (422) as the editor shows it: the gateway's reasons; null for any other failure. */
export function refusalOf(action: string, error: unknown): Refusal | null {
  if (!(error instanceof ApiError) || error.status !== 422) return null;
  const body = (error.body ?? {}) as { problems?: GraphProblem[]; estimate?: RunEstimate };
  return { action, message: error.message, problems: body.problems, estimate: body.estimate };
}

/**
 * The gateway estimate after a failed request: a gateway without the route (404, 405) is not asked again; a
 * passing failure (the gateway restarting) keeps the last estimate it gave.
 */
export function afterEstimateFailure(previous: GatewayEstimate, error: unknown): GatewayEstimate {
  if (error instanceof ApiError && (error.status === 404 || error.status === 405)) return { phase: "missing" };
  return previous.phase === "ok" ? previous : { phase: "error", message: errorMessage(error) };
}

/** The estimate on screen: the gateway's (cache-aware) against the current budget when it gave one, else the browser's. */
export function shownEstimate(gateway: GatewayEstimate, nodes: ReadonlyMap<string, EditorNode>, budget: number | null): ShownEstimate {
  if (gateway.phase !== "ok") return browserEstimate(nodes, budget);
  return {
    ...gateway.estimate,
    maxCost: budget,
    withinBudget: budget === null || gateway.estimate.estimatedTotalCost <= budget,
    origin: "gateway",
  };
}

/** The gateway's problems first, then the browser's, each (node, slot, message) once. */
export function mergeProblems(...lists: GraphProblem[][]): GraphProblem[] {
  const seen = new Set<string>();
  return lists.flat().filter((p) => {
    const key = `${p.nodeId}\u0000${p.slot ?? ""}\u0000${p.message}`;
    return seen.has(key) ? false : (seen.add(key), true);
  });
}
