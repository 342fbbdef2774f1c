"use client";

import type { NodeStatus } from "@vp/contracts";
import { disabledReason, inputsSatisfied, validateForExecution, type GraphNode, type NodeLookup } from "@vp/flow-graph";
import { STATUS_LABEL } from "@/lib/node-types";
import type { EditorNode } from "@/lib/graph-state";

export const OUTDATED_REASON = "Made before its config or an input changed: run it again to replace this result";

/** The node's status; a completed node whose result no longer matches the graph reads "Outdated". */
export function StatusBadge({ status, outdated = false, testId }: { status: NodeStatus; outdated?: boolean; testId?: string }) {
  const stale = outdated && status === "completed";
  return (
    <span
      className={`badge status-${status}${stale ? " outdated" : ""}`}
      data-testid={testId}
      data-status={status}
      data-outdated={stale ? "true" : undefined}
      title={stale ? OUTDATED_REASON : undefined}
    >
      <span className="badge-dot" aria-hidden />
      {stale ? "Outdated" : STATUS_LABEL[status]}
    </span>
  );
}

export function ProgressBar({ percent, testId, label }: { percent: number | undefined; testId?: string; label?: string }) {
  const value = Math.max(0, Math.min(100, percent ?? 0));
  return (
    <div
      className="progress"
      role="progressbar"
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={Math.round(value)}
      aria-label={label}
      data-testid={testId}
    >
      <div className={`progress-fill${percent === undefined ? " indeterminate" : ""}`} style={{ width: percent === undefined ? "35%" : `${value}%` }} />
    </div>
  );
}

/**
 * Whether the play button may be pressed, with the reason when it may not (the same rules the gateway
 * and the scheduler apply: pending, every input completed, the input schema satisfied).
 */
export function runnability(node: EditorNode, lookup: NodeLookup): { canRun: boolean; reason?: string } {
  const disabled = disabledReason(node as GraphNode, lookup);
  if (disabled) return { canRun: false, reason: disabled };
  if (node.status !== "pending") return { canRun: false, reason: `The node is ${STATUS_LABEL[node.status].toLowerCase()}` };
  const graphNode = node as GraphNode;
  if (!inputsSatisfied(graphNode, lookup)) {
    const waiting = Object.values(node.inputs ?? {})
      .flat()
      .filter((id) => lookup.get(id)?.status !== "completed")
      .map((id) => `"${lookup.get(id) ? (lookup.get(id) as EditorNode).title : id}"`);
    return { canRun: false, reason: `Waiting for ${waiting.join(", ")} to complete` };
  }
  const problems = validateForExecution(graphNode, lookup);
  if (problems.length) {
    const first = problems[0]!;
    if (node.type === "asset" && /no uploaded file or content/.test(first.message)) return { canRun: false, reason: "Upload a file or type the content first" };
    return { canRun: false, reason: first.message.charAt(0).toUpperCase() + first.message.slice(1) };
  }
  return { canRun: true };
}
