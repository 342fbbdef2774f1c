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
