import { INPUT_SCHEMAS, type MediaType, type NodeStatus, type NodeType, NODE_TYPES, outputMediaType } from "@vp/contracts";

/**
 * Framework-free graph rules shared by the gateway, the scheduler and the editor: readiness
 * (inputsSatisfied), input validation against a node type's input schema, and cycles.
 */
export interface GraphNode {
  id: string;
  type: NodeType;
  inputs: Record<string, string[]>;
  status: NodeStatus;
  /** The title people know the node by; messages name nodes by it (the id stays in the structured fields). */
  title?: string;
  asset?: { type?: MediaType; source?: string; content?: string } | Record<string, unknown> | null;
  output?: { type?: string; s3Key?: string } | Record<string, unknown> | null;
  /** Switched off by the producer: runs skip it and everything downstream of it; an execute of it is refused. */
  disabled?: boolean;
}

export interface Problem {
  nodeId: string;
  slot?: string;
  /** Names other nodes by title, the id after it ("Music" (music)); the node itself is nodeId. */
  message: string;
}

export type NodeLookup = ReadonlyMap<string, GraphNode>;

/** A node as people know it: its title with the id after it when they differ ("Music" (music)), else the id. */
export function nodeLabel(id: string, nodes: NodeLookup | undefined): string {
  const title = nodes?.get(id)?.title;
  return title && title !== id ? `"${title}" (${id})` : id;
}

/** How a problem names another node: "Music" (music), or node "music" when it has no other title (or does not exist). */
export function nodeName(id: string, nodes: NodeLookup): string {
  const label = nodeLabel(id, nodes);
  return label === id ? `node "${id}"` : label;
}

export function upstreamIds(node: Pick<GraphNode, "inputs">): string[] {
  return Object.values(node.inputs ?? {}).flat();
}

/**
 * Whether a node's inputs are satisfied: true with no inputs, true when every input node is completed, false
 * when any is not. An input id that names no node is not satisfied (it is never silently skipped).
 */
export function inputsSatisfied(node: Pick<GraphNode, "inputs">, nodes: NodeLookup): boolean {
  return upstreamIds(node).every((id) => nodes.get(id)?.status === "completed");
}

/** A node can execute when it is pending and its inputs are satisfied. */
export function readyToExecute(node: GraphNode, nodes: NodeLookup): boolean {
  return node.status === "pending" && inputsSatisfied(node, nodes);
}

/** The reason execute refuses a node that is not ready (the API's 422 error text). */
export function notReadyReason(node: GraphNode, nodes: NodeLookup): string {
  return `Node not ready (status: ${node.status}, inputs satisfied: ${inputsSatisfied(node, nodes)})`;
}

function declaredOutput(node: GraphNode): MediaType | undefined {
  const asset = node.asset as { type?: MediaType } | null | undefined;
  return outputMediaType(node.type, asset);
}

/**
 * Checks that hold while a pipeline is being drawn: known slots, at most `max` inputs per slot, inputs
 * that exist, no self-reference, and media types that the slot accepts (by what the upstream type will
 * produce). Minimum counts are not checked here: a merge is drawn one edge at a time.
 */
export function validateStructure(node: GraphNode, nodes: NodeLookup): Problem[] {
  const problems: Problem[] = [];
  if (!NODE_TYPES.includes(node.type)) {
    return [{ nodeId: node.id, message: `unknown node type "${String(node.type)}"` }];
  }
  const schema = INPUT_SCHEMAS[node.type];
  for (const [slot, ids] of Object.entries(node.inputs ?? {})) {
    const spec = schema[slot];
    if (!spec) {
      const known = Object.keys(schema);
      problems.push({
        nodeId: node.id,
        slot,
        message: `${node.type} has no input "${slot}"${known.length ? ` (inputs: ${known.join(", ")})` : " (it takes no inputs)"}`,
      });
      continue;
    }
    if (!Array.isArray(ids)) {
      problems.push({ nodeId: node.id, slot, message: `input "${slot}" must be a list of node ids` });
      continue;
    }
    if (ids.length > spec.max) {
      problems.push({ nodeId: node.id, slot, message: `input "${slot}" takes at most ${spec.max} node(s), got ${ids.length}` });
    }
    for (const id of ids) {
      if (id === node.id) {
        problems.push({ nodeId: node.id, slot, message: `input "${slot}" refers to the node itself` });
        continue;
      }
      const upstream = nodes.get(id);
      if (!upstream) {
        problems.push({ nodeId: node.id, slot, message: `input "${slot}" refers to node "${id}", which does not exist in this pipeline` });
        continue;
      }
      const produces = declaredOutput(upstream);
      if (produces && !spec.accepts.includes(produces)) {
        problems.push({
          nodeId: node.id,
          slot,
          message: `input "${slot}" accepts ${spec.accepts.join(" or ")}, but ${nodeName(id, nodes)} produces ${produces}`,
        });
      }
    }
  }
  return problems;
}

/**
 * Everything `validateStructure` checks, plus what must hold before any money is spent: minimum counts,
 * and every input completed with a stored output of an accepted media type.
 */
export function validateForExecution(node: GraphNode, nodes: NodeLookup): Problem[] {
  const problems = validateStructure(node, nodes);
  if (problems.length) return problems;
  for (const [slot, spec] of Object.entries(INPUT_SCHEMAS[node.type])) {
    const ids = node.inputs?.[slot] ?? [];
    if (ids.length < spec.min) {
      problems.push({ nodeId: node.id, slot, message: `input "${slot}" needs at least ${spec.min} node(s), got ${ids.length}` });
    }
    for (const id of ids) {
      const upstream = nodes.get(id)!;
      if (upstream.status !== "completed") continue; // reported by readiness, with notReadyReason's wording
      const output = upstream.output as { type?: string; s3Key?: string } | null | undefined;
      if (!output?.s3Key) {
        problems.push({ nodeId: node.id, slot, message: `input "${slot}": ${nodeName(id, nodes)} is completed but has no output` });
      } else if (!spec.accepts.includes(output.type as MediaType)) {
        problems.push({
          nodeId: node.id,
          slot,
          message: `input "${slot}" accepts ${spec.accepts.join(" or ")}, but ${nodeName(id, nodes)} output is ${output.type ?? "untyped"}`,
        });
      }
    }
  }
  if (node.type === "asset") {
    const asset = node.asset as { type?: string; source?: string; content?: string; url?: string | null } | null | undefined;
    if (!asset?.type) problems.push({ nodeId: node.id, message: "asset has no type" });
    else if (!asset.source && asset.content === undefined && typeof asset.url !== "string") {
      problems.push({ nodeId: node.id, message: "asset has no uploaded file or content" });
    }
  }
  return problems;
}

/** A cycle through `start` if adding or keeping its inputs creates one; the ids along it, else null. */
export function findCycle(nodes: NodeLookup): string[] | null {
  const state = new Map<string, "visiting" | "done">();
  const stack: string[] = [];
  const visit = (id: string): string[] | null => {
    const s = state.get(id);
    if (s === "done") return null;
    if (s === "visiting") return [...stack.slice(stack.indexOf(id)), id];
    state.set(id, "visiting");
    stack.push(id);
    const node = nodes.get(id);
    for (const up of node ? upstreamIds(node) : []) {
      if (!nodes.has(up)) continue;
      const cycle = visit(up);
      if (cycle) return cycle;
    }
    stack.pop();
    state.set(id, "done");
    return null;
  };
  for (const id of nodes.keys()) {
    const cycle = visit(id);
    if (cycle) return cycle;
  }
  return null;
}

/** One line of every problem, each led by its node: the title (the id after it) when `nodes` knows one, else the id. */
export function formatProblems(problems: Problem[], nodes?: NodeLookup): string {
  return problems.map((p) => `${nodeLabel(p.nodeId, nodes)}${p.slot ? `.${p.slot}` : ""}: ${p.message}`).join("; ");
}

export function lookup(nodes: Iterable<GraphNode>): Map<string, GraphNode> {
  return new Map([...nodes].map((n) => [n.id, n]));
}

export * from "./connection";
export * from "./document";
export * from "./node-fields";
export * from "./pipeline-check";
export * from "./estimate";
export * from "./execution-verdict";
