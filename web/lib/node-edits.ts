import { INPUT_SCHEMAS, NODE_TYPES, outputMediaType, type MediaType, type NodePosition, type NodeType } from "@vp/contracts";
import { inputsWithout, nextNodeId, type EditorNode } from "./graph-state";
import { placeNewNode } from "./layout";
import { NODE_TYPE_INFO } from "./node-types";

/**
 * The writes behind the editor's structure edits, computed from the model: what a new node is created with,
 * and which inputs change when a node or an edge goes.
 */

export interface NewNode {
  id: string;
  title: string;
  type: NodeType;
  position: NodePosition;
  inputs?: Record<string, string[]>;
  asset?: { type: string };
}

/**
 * A node added from the palette: a readable free id, "<Label> <n>" as title, placed beside the selected node (or the
 * nodes already on the canvas); an asset starts as a video.
 */
export function newNode(
  type: NodeType,
  nodes: ReadonlyMap<string, EditorNode>,
  placed: Array<{ position: NodePosition; width?: number; height?: number }>,
  selected?: { position: NodePosition; width?: number; height?: number },
): NewNode {
  const sameType = [...nodes.values()].filter((n) => n.type === type).length;
  return {
    id: nextNodeId(type, nodes.keys()),
    title: `${NODE_TYPE_INFO[type].label} ${sameType + 1}`,
    type,
    position: placeNewNode(type, placed, selected),
    ...(type === "asset" ? { asset: { type: "video" } } : {}),
  };
}

/** Every node that uses `id` as an input, with its inputs without it (the gateway refuses to delete an input). */
export function dependantPatches(nodes: ReadonlyMap<string, EditorNode>, id: string): Array<{ id: string; inputs: Record<string, string[]> }> {
  const patches: Array<{ id: string; inputs: Record<string, string[]> }> = [];
  for (const other of nodes.values()) {
    const inputs = inputsWithout(other.inputs ?? {}, id);
    if (Object.keys(inputs).length) patches.push({ id: other.id, inputs });
  }
  return patches;
}

/** A node cannot be deleted while it is queued or running. */
export function isRunning(node: EditorNode): boolean {
  return node.status === "queued" || node.status === "in_progress";
}

/**
 * The node types a connection dropped on empty canvas can create, each with the input slot the dragged output would
 * feed: the first slot that accepts what the source node produces.
 */
export function typesTakingOutputOf(source: EditorNode): Array<{ type: NodeType; slot: string }> {
  const media = outputMediaType(source.type, source.asset as { type?: MediaType } | null);
  if (!media) return [];
  return NODE_TYPES.flatMap((type) => {
    const slot = Object.entries(INPUT_SCHEMAS[type]).find(([, spec]) => spec.accepts.includes(media))?.[0];
    return slot ? [{ type, slot }] : [];
  });
}

/**
 * The revisions this page's own writes moved each node through (from → to). An edit begun at revision r (a title,
 * a config change, typed text) still holds when only this page changed the node since: `rebase` then names the
 * revision the node is at, so quick edits of one node (rename it, then pick a provider) do not refuse each other. A
 * change from another page seen on the event stream breaks the chain and the write is refused as before (one not yet
 * seen when this page wrote over it is not noticed).
 */
export class OwnRevisions {
  private readonly links = new Map<string, Map<number, number>>();
  private readonly latest = new Map<string, number>();

  /** The node's revision as last known: the model's, or a later one this page's own write produced. */
  current(id: string, modelRevision: number | undefined): number | undefined {
    const own = this.latest.get(id);
    return own === undefined ? modelRevision : Math.max(own, modelRevision ?? own);
  }

  /** This page's write moved the node from `from` (its revision as known when sent) to `to`. */
  wrote(id: string, from: number | undefined, to: number | undefined) {
    if (to === undefined) return;
    this.latest.set(id, Math.max(to, this.latest.get(id) ?? to));
    if (from === undefined || from === to) return;
    const links = this.links.get(id) ?? new Map<number, number>();
    links.set(from, to);
    this.links.set(id, links);
  }

  /** `base`, or the node's current revision when every change since `base` was this page's own. */
  rebase(id: string, base: number, current: number | undefined): number {
    const links = this.links.get(id);
    let at = base;
    for (let steps = 0; links && at !== current && links.has(at) && steps <= links.size; steps++) at = links.get(at)!;
    return at === current ? at : base;
  }
}
