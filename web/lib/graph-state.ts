import { NODE_STATUSES, type NodeStatus, type SerializedPipeline, type Variable } from "@vp/contracts";
import { lookup, type GraphNode, type NodeLookup } from "@vp/flow-graph";
import type { ApiNode } from "./api";

/**
 * The editor's model of one pipeline. Structure (title, inputs, config, asset, position) comes from the
 * gateway's REST answers; execution state (status, metadata, output) from its SSE stream. Each node keeps
 * the highest `stateVersion` it has seen, and an event with a lower or equal version is dropped, so a
 * replayed or late event never puts a stale status back on screen.
 */
export interface EditorNode extends ApiNode {
  /** Highest state version applied; -1 when the state came from a REST read (version unknown). */
  stateVersion: number;
}

export interface GraphState {
  pipeline: SerializedPipeline | null;
  /** In creation order. */
  nodes: ReadonlyMap<string, EditorNode>;
  /** The pipeline's structure revision this page has (-1 until known). */
  revision: number;
  /** The last structure change another page made (for a notice): who, and what, in words. */
  remoteChange?: { revision: number; by: string; what: string };
  /**
   * Set when the page may miss structure: an event named a node it does not know, or a structure event or the
   * stream's revision skipped past what it has. The structure is reloaded.
   */
  stale: boolean;
}

/** What the gateway's SSE `structure` event carries (StructureChanged). */
export interface StructureEvent {
  revision: number;
  by: string;
  client?: string;
  at: string;
  pipeline?: { title: string; config: Record<string, unknown>; variables?: Variable[] };
  nodes: Array<{ id: string; node: ApiNode | null }>;
}

/** What the gateway's SSE `node` event carries (NodeChanged). */
export interface NodeEvent {
  nodeId: string;
  status: NodeStatus;
  stateVersion: number;
  metadata: ApiNode["metadata"];
  output: ApiNode["output"];
  pipelineMetadata?: Record<string, unknown>;
}

export type GraphAction =
  | { kind: "loaded"; pipeline: SerializedPipeline; nodes: ApiNode[] }
  | { kind: "snapshot"; pipeline: SerializedPipeline; nodes: ApiNode[]; stateVersions?: Record<string, number> }
  | { kind: "event"; event: NodeEvent }
  | { kind: "saved"; node: ApiNode }
  | { kind: "added"; node: ApiNode }
  | { kind: "removed"; id: string }
  | { kind: "pipeline"; pipeline: SerializedPipeline }
  | { kind: "structure"; event: StructureEvent; own: boolean }
  | { kind: "revision"; revision: number };

/** The pipeline's own fields; its nodes live in the node map. */
function withoutNodes(pipeline: SerializedPipeline): SerializedPipeline {
  const { nodes: _nodes, ...rest } = pipeline;
  return rest;
}

export const emptyGraph: GraphState = { pipeline: null, nodes: new Map(), revision: -1, stale: false };

const structureOf = (node: ApiNode) => ({
  title: node.title,
  type: node.type,
  inputs: node.inputs ?? {},
  config: node.config ?? {},
  asset: node.asset ?? null,
  position: node.position ?? null,
  disabled: node.disabled === true,
  revision: node.revision ?? 0,
});
const executionOf = (node: ApiNode) => ({ status: node.status, metadata: node.metadata ?? null, output: node.output ?? null });

export function graphReducer(state: GraphState, action: GraphAction): GraphState {
  switch (action.kind) {
    case "loaded": {
      // A REST read: structure is authoritative; execution state only fills nodes the stream has not reached.
      const nodes = new Map<string, EditorNode>();
      for (const node of action.nodes) {
        const known = state.nodes.get(node.id);
        nodes.set(
          node.id,
          known && known.stateVersion >= 0
            ? { ...known, ...structureOf(node) }
            : { ...node, ...structureOf(node), ...executionOf(node), stateVersion: known?.stateVersion ?? -1 },
        );
      }
      return { pipeline: withoutNodes({ ...state.pipeline, ...action.pipeline }), nodes, revision: action.pipeline.revision ?? state.revision, stale: false };
    }
    case "snapshot": {
      const nodes = new Map<string, EditorNode>();
      for (const node of action.nodes) {
        const version = action.stateVersions?.[node.id] ?? -1;
        const known = state.nodes.get(node.id);
        const keepState = known !== undefined && known.stateVersion > version;
        nodes.set(node.id, {
          ...node,
          ...structureOf(node),
          ...(keepState ? executionOf(known) : executionOf(node)),
          stateVersion: keepState ? known.stateVersion : version,
        });
      }
      return { pipeline: withoutNodes(action.pipeline), nodes, revision: action.pipeline.revision ?? state.revision, stale: false };
    }
    case "structure": {
      const next = applyStructure(state, action.event);
      if (action.own || next.revision !== action.event.revision || next === state) return next;
      return { ...next, remoteChange: { revision: action.event.revision, by: action.event.by, what: describeChange(state, action.event) } };
    }
    case "revision":
      return action.revision > state.revision && state.revision >= 0 ? { ...state, stale: true } : state;
    case "event": {
      const { event } = action;
      const known = state.nodes.get(event.nodeId);
      const pipeline = state.pipeline && event.pipelineMetadata ? { ...state.pipeline, metadata: event.pipelineMetadata } : state.pipeline;
      if (!known) return { ...state, pipeline, stale: true };
      if (event.stateVersion <= known.stateVersion) return state;
      const nodes = new Map(state.nodes);
      nodes.set(event.nodeId, {
        ...known,
        status: event.status,
        metadata: event.metadata ?? null,
        output: event.output ?? null,
        stateVersion: event.stateVersion,
      });
      return { ...state, pipeline, nodes };
    }
    case "saved": {
      const known = state.nodes.get(action.node.id);
      if (!known) return state;
      // An answer older than what the stream already brought (another tab's later change) is not put back.
      if ((known.revision ?? 0) > (action.node.revision ?? 0)) return state;
      const nodes = new Map(state.nodes);
      nodes.set(action.node.id, { ...known, ...structureOf(action.node) });
      return { ...state, nodes };
    }
    case "added": {
      if (state.nodes.has(action.node.id)) return graphReducer(state, { kind: "saved", node: action.node });
      const nodes = new Map(state.nodes);
      nodes.set(action.node.id, { ...action.node, ...structureOf(action.node), ...executionOf(action.node), stateVersion: -1 });
      return { ...state, nodes };
    }
    case "removed": {
      if (!state.nodes.has(action.id)) return state;
      const nodes = new Map(state.nodes);
      nodes.delete(action.id);
      return { ...state, nodes };
    }
    case "pipeline":
      return { ...state, pipeline: { ...state.pipeline, ...action.pipeline } };
  }
}

/**
 * A structure change from the stream: the next revision is applied (each node only if it is newer than the one
 * shown: this page's own write may have put it there already), one this page has is dropped, and one past the next
 * means changes were missed: the structure is reloaded.
 */
function applyStructure(state: GraphState, event: StructureEvent): GraphState {
  if (event.revision <= state.revision) return state;
  if (state.revision >= 0 && event.revision > state.revision + 1) return { ...state, stale: true };
  const nodes = new Map(state.nodes);
  for (const { id, node } of event.nodes) {
    const known = nodes.get(id);
    if (!node) {
      nodes.delete(id);
      continue;
    }
    if (known && (known.revision ?? 0) >= (node.revision ?? 0)) continue;
    nodes.set(id, known ? { ...known, ...structureOf(node) } : { ...node, ...structureOf(node), ...executionOf(node), stateVersion: -1 });
  }
  const pipeline = state.pipeline && event.pipeline ? { ...state.pipeline, ...event.pipeline, revision: event.revision } : state.pipeline;
  return { ...state, pipeline, nodes, revision: event.revision };
}

/** "renamed the pipeline", "added Intro", "removed Outro", "changed Voice and 2 more". */
export function describeChange(before: GraphState, event: StructureEvent): string {
  const title = (id: string, node: ApiNode | null) => `"${node?.title ?? before.nodes.get(id)?.title ?? id}"`;
  const added = event.nodes.filter((n) => n.node && !before.nodes.has(n.id));
  const removed = event.nodes.filter((n) => !n.node);
  const changed = event.nodes.filter((n) => n.node && before.nodes.has(n.id));
  const list = (items: typeof event.nodes) =>
    items.length === 1 ? title(items[0]!.id, items[0]!.node) : `${title(items[0]!.id, items[0]!.node)} and ${items.length - 1} more`;
  const parts: string[] = [];
  if (event.pipeline && event.pipeline.title !== before.pipeline?.title) parts.push("renamed the pipeline");
  else if (event.pipeline) parts.push("changed the pipeline's settings");
  if (added.length) parts.push(`added ${list(added)}`);
  if (removed.length) parts.push(`removed ${list(removed)}`);
  if (changed.length) parts.push(`changed ${list(changed)}`);
  return parts.join(", ") || "changed the pipeline";
}

/** The flow-graph view of the model (what readiness and connection checks take). */
export function graphLookup(nodes: ReadonlyMap<string, EditorNode>): NodeLookup {
  return lookup([...nodes.values()].map((n) => n as GraphNode));
}

export interface EdgeModel {
  id: string;
  source: string;
  target: string;
  slot: string;
  /** 1-based position inside the slot (the play order of merge-videos segments). */
  order: number;
  slotSize: number;
}

/** One edge per (upstream, slot) of every node's inputs. */
export function edgesOf(nodes: ReadonlyMap<string, EditorNode>): EdgeModel[] {
  const edges: EdgeModel[] = [];
  for (const node of nodes.values()) {
    for (const [slot, ids] of Object.entries(node.inputs ?? {})) {
      ids.forEach((source, index) => {
        if (!nodes.has(source)) return;
        edges.push({ id: edgeId(source, node.id, slot), source, target: node.id, slot, order: index + 1, slotSize: ids.length });
      });
    }
  }
  return edges;
}

export const edgeId = (source: string, target: string, slot: string) => `${source}->${target}.${slot}`;

export type StatusCounts = Record<NodeStatus, number> & { total: number };

export function statusCounts(nodes: Iterable<{ status: NodeStatus }>): StatusCounts {
  const counts = Object.fromEntries(NODE_STATUSES.map((s) => [s, 0])) as StatusCounts;
  counts.total = 0;
  for (const node of nodes) {
    counts[node.status] += 1;
    counts.total += 1;
  }
  return counts;
}

/** Sum of the nodes' metadata.cost (what the state-writer also keeps as pipeline metadata.totalCost). */
export function totalCost(nodes: Iterable<{ metadata?: { cost?: number } | null }>): number {
  let sum = 0;
  for (const node of nodes) sum += node.metadata?.cost ?? 0;
  return sum;
}

/** The inputs of `target` without `source` (every slot), for deleting an edge or a node. */
export function inputsWithout(inputs: Record<string, string[]>, source: string, slot?: string): Record<string, string[]> {
  const out: Record<string, string[]> = {};
  for (const [name, ids] of Object.entries(inputs)) {
    if (slot !== undefined && name !== slot) continue;
    if (ids.includes(source)) out[name] = ids.filter((id) => id !== source);
  }
  return out;
}

/** A new id for a node of `type`: `<type>-<n>` with the smallest free n (readable in exported documents). */
export function nextNodeId(type: string, taken: Iterable<string>): string {
  const used = new Set(taken);
  for (let n = 1; ; n++) {
    const id = `${type}-${n}`;
    if (!used.has(id)) return id;
  }
}
