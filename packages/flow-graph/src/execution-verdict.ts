import { disabledReason } from "./pipeline-check";
import { formatProblems, notReadyReason, readyToExecute, validateForExecution, type GraphNode, type NodeLookup, type Problem } from "./index";

/** Whether a single execute may start a node; when not, the refusal's text and the problems behind it (none when it is only not ready). */
export type ExecutionVerdict = { ok: true } | { ok: false; reason: string; problems: Problem[] };

/**
 * The one readiness check of a single execute, made by the gateway (its fast 422) and again by the scheduler
 * (the authority): the node and its inputs are enabled, the node is pending with every input completed, then its
 * inputs are valid for its type.
 * `nodes` holds at least the node's inputs.
 */
export function executionVerdict(node: GraphNode, nodes: NodeLookup): ExecutionVerdict {
  const disabled = disabledReason(node, nodes);
  if (disabled) return { ok: false, reason: disabled, problems: [] };
  if (!readyToExecute(node, nodes)) return { ok: false, reason: notReadyReason(node, nodes), problems: [] };
  const problems = validateForExecution(node, nodes);
  if (problems.length) return { ok: false, reason: formatProblems(problems, new Map([...nodes, [node.id, node]])), problems };
  return { ok: true };
}
