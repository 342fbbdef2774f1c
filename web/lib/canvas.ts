import { MarkerType, type Edge, type EdgeChange, type Node } from "@xyflow/react";
import { edgesOf, type EditorNode } from "./graph-state";
import { layoutMissing } from "./layout";

/**
 * The canvas's view of the model. React Flow keeps position, size and selection of its nodes; the model keeps
 * everything else, and edges are derived from the model's inputs on every change.
 */

/**
 * React Flow's nodes after the model changed: nodes added or removed in the model are added or removed, a node
 * without a stored position gets a layered one, and the same array comes back when the ids did not change.
 */
export function syncFlowNodes(previous: Node[], nodes: ReadonlyMap<string, EditorNode>): Node[] {
  const ids = [...nodes.keys()];
  if (previous.length === ids.length && previous.every((n, i) => n.id === ids[i])) return previous;
  const byId = new Map(previous.map((n) => [n.id, n]));
  const positions = layoutMissing([...nodes.values()]);
  return ids.map((id) => byId.get(id) ?? { id, type: "vp", position: positions.get(id)!, data: {} });
}

/** Only `id` selected (none for null); untouched nodes keep their identity. */
export function selectOnly(nodes: Node[], id: string | null): Node[] {
  return nodes.map((n) => (n.selected === (n.id === id) ? n : { ...n, selected: n.id === id }));
}

/** Nothing selected; the same array when nothing was. */
export function deselectAll(nodes: Node[]): Node[] {
  return nodes.some((n) => n.selected) ? nodes.map((n) => (n.selected ? { ...n, selected: false } : n)) : nodes;
}

/** The selected edge ids after React Flow's select changes (edges themselves are derived, not stored). */
export function withEdgeSelection(current: ReadonlySet<string>, changes: EdgeChange[]): ReadonlySet<string> {
  const next = new Set(current);
  for (const c of changes) if (c.type === "select") c.selected ? next.add(c.id) : next.delete(c.id);
  return next;
}

/** One React Flow edge per input: numbered when a slot takes several, solid once its source has completed. */
export function flowEdges(nodes: ReadonlyMap<string, EditorNode>, selectedEdges: ReadonlySet<string>): Edge[] {
  return edgesOf(nodes).map((e) => {
    const ready = nodes.get(e.source)?.status === "completed";
    return {
      id: e.id,
      source: e.source,
      target: e.target,
      sourceHandle: "out",
      targetHandle: e.slot,
      selected: selectedEdges.has(e.id),
      label: e.slotSize > 1 ? `${e.order}` : undefined,
      labelBgPadding: [6, 3] as [number, number],
      labelBgBorderRadius: 8,
      className: ready ? "edge-ready" : "edge-waiting",
      markerEnd: { type: MarkerType.ArrowClosed, width: 16, height: 16 },
      ariaLabel: `${e.source} to ${e.target} ${e.slot} #${e.order}`,
    };
  });
}

/** A dragged node's position as stored: whole pixels. */
export function storedPosition(position: { x: number; y: number }): { x: number; y: number } {
  return { x: Math.round(position.x), y: Math.round(position.y) };
}
