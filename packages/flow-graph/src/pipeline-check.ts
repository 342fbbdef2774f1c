import { INPUT_SCHEMAS, NODE_TYPES } from "@vp/contracts";
import { nodeLabel, nodeName, upstreamIds, validateForExecution, validateStructure, type GraphNode, type NodeLookup, type Problem } from "./index";

/**
 * The whole-pipeline check before a run spends anything (graph checks before spending): every
 * problem of every node at once, node by node, so one 422 lists them all and the editor can highlight each
 * offending node. Checks, for the nodes that would run (`members`, default every node that is not completed):
 * cycles, dangling inputs, media types (by what the upstream type will produce, or its stored output when
 * completed), slot counts including minimums, and assets without content. Completed nodes outside the run
 * are only inputs: they are not checked themselves.
 */
export function checkPipeline(all: Iterable<GraphNode>, members?: Iterable<string>): Problem[] {
  const nodes: NodeLookup = new Map([...all].map((n) => [n.id, n]));
  const runIds = new Set(members ?? [...nodes.values()].filter((n) => n.status !== "completed").map((n) => n.id));
  const problems: Problem[] = [];

  for (const cycle of findCycles(nodes, runIds)) {
    // In data-flow order, each node by its title.
    const path = [...cycle]
      .reverse()
      .map((id) => nodeLabel(id, nodes))
      .join(" -> ");
    for (const id of new Set(cycle)) problems.push({ nodeId: id, message: `is part of a cycle: ${path}` });
  }
  for (const id of runIds) {
    const node = nodes.get(id);
    if (!node) continue;
    if (!NODE_TYPES.includes(node.type)) {
      problems.push(...validateStructure(node, nodes));
      continue;
    }
    // As if every upstream in the run had completed with what its type declares: validateForExecution then
    // checks minimum counts and asset content, while media types of members come from validateStructure.
    const structural = validateStructure(node, nodes);
    if (structural.length) {
      problems.push(...structural);
      continue;
    }
    // Only the node's inputs: a copy of the whole lookup per node made the check quadratic in pipeline size.
    const view = new Map<string, GraphNode>();
    for (const up of upstreamIds(node)) {
      const n = nodes.get(up);
      if (n) view.set(up, runIds.has(up) ? { ...n, status: "pending" } : n);
    }
    problems.push(...validateForExecution(node, view));
  }
  // A slot naming the same node twice (merge [a, a]) reports its problem once.
  const seen = new Set<string>();
  return problems.filter((p) => {
    const k = `${p.nodeId}\u0000${p.slot ?? ""}\u0000${p.message}`;
    return seen.has(k) ? false : (seen.add(k), true);
  });
}

/**
 * Every elementary cycle found by a depth-first search over `ids` (each back edge gives one cycle), so a
 * pipeline with two separate loops reports both. Linear in nodes + edges.
 */
export function findCycles(nodes: NodeLookup, ids: Iterable<string> = nodes.keys()): string[][] {
  const scope = new Set(ids);
  const state = new Map<string, "visiting" | "done">();
  const cycles: string[][] = [];
  for (const root of scope) {
    if (state.has(root)) continue;
    // Iterative DFS: a 1,000-node chain must not blow the stack.
    const stack: { id: string; ups: string[]; i: number }[] = [];
    const push = (id: string) => {
      state.set(id, "visiting");
      const n = nodes.get(id);
      stack.push({ id, ups: n ? [...new Set(upstreamIds(n))].filter((u) => scope.has(u) && nodes.has(u)) : [], i: 0 });
    };
    push(root);
    while (stack.length) {
      const top = stack[stack.length - 1]!;
      if (top.i >= top.ups.length) {
        state.set(top.id, "done");
        stack.pop();
        continue;
      }
      const up = top.ups[top.i++]!;
      const s = state.get(up);
      if (s === "visiting") {
        const from = stack.findIndex((f) => f.id === up);
        cycles.push([...stack.slice(from).map((f) => f.id), up]);
      } else if (s === undefined) push(up);
    }
  }
  return cycles;
}

/** Input slots a node type requires (min > 0), for editors that show what is missing. */
export function requiredSlots(type: GraphNode["type"]): string[] {
  return Object.entries(INPUT_SCHEMAS[type] ?? {})
    .filter(([, spec]) => spec.min > 0)
    .map(([slot]) => slot);
}

/**
 * The members of a run: every node that is not completed (run all), or the targets and everything upstream
 * of them that is not completed (run to here). Upstream of a completed node is not followed: its output
 * is what the run uses.
 */
export function selectRunMembers(nodes: Iterable<Pick<GraphNode, "id" | "inputs" | "status" | "disabled">>, targets?: string[]): string[] {
  const byId = new Map<string, Pick<GraphNode, "id" | "inputs" | "status" | "disabled">>();
  for (const n of nodes) byId.set(n.id, n);
  if (!targets) {
    const blocked = blockedByDisabled(byId.values());
    return [...byId.values()].filter((n) => n.status !== "completed" && !blocked.has(n.id)).map((n) => n.id);
  }
  const seen = new Set<string>();
  const queue = targets.filter((t) => byId.get(t) && byId.get(t)!.status !== "completed");
  for (const t of queue) seen.add(t);
  for (let i = 0; i < queue.length; i++) {
    for (const up of Object.values(byId.get(queue[i]!)!.inputs ?? {}).flat()) {
      const n = byId.get(up);
      if (!n || n.status === "completed" || seen.has(up)) continue;
      seen.add(up);
      queue.push(up);
    }
  }
  return [...byId.keys()].filter((id) => seen.has(id));
}

/**
 * Nodes a run must leave out because of a disabled node: each disabled node, and everything downstream of it (its
 * result is not to be made, so nothing may be made from it). Maps each such node to the disabled node that blocks it.
 * Linear in nodes + edges.
 */
export function blockedByDisabled(nodes: Iterable<Pick<GraphNode, "id" | "inputs" | "disabled">>): Map<string, string> {
  const list = [...nodes];
  const blocked = new Map<string, string>();
  for (const n of list) {
    if (!n.disabled || blocked.has(n.id)) continue;
    blocked.set(n.id, n.id);
    for (const d of downstreamIds(list, n.id)) if (!blocked.has(d)) blocked.set(d, n.id);
  }
  return blocked;
}

/** Why an execute of `node` is refused because it or one of its inputs is disabled; undefined when neither is. */
export function disabledReason(node: GraphNode, nodes: NodeLookup): string | undefined {
  const named = new Map(nodes).set(node.id, node);
  if (node.disabled) return `${capitalised(nodeName(node.id, named))} is disabled: enable it to run it`;
  for (const up of new Set(upstreamIds(node))) {
    if (nodes.get(up)?.disabled) return `${capitalised(nodeName(node.id, named))} cannot run: its input ${nodeName(up, named)} is disabled (enable it first)`;
  }
  return undefined;
}

function capitalised(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** Every node downstream of `id` (its dependants, theirs, ...), in the order given; linear in nodes + edges. */
export function downstreamIds(nodes: Iterable<Pick<GraphNode, "id" | "inputs">>, id: string): string[] {
  const list = [...nodes];
  const dependants = new Map<string, string[]>();
  for (const n of list) for (const up of new Set(upstreamIds(n))) dependants.set(up, [...(dependants.get(up) ?? []), n.id]);
  const seen = new Set<string>();
  const queue = [id];
  for (let i = 0; i < queue.length; i++) {
    for (const d of dependants.get(queue[i]!) ?? []) {
      if (seen.has(d) || d === id) continue;
      seen.add(d);
      queue.push(d);
    }
  }
  return list.filter((n) => seen.has(n.id)).map((n) => n.id);
}
