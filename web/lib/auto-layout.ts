import dagre from "@dagrejs/dagre";
import type { NodePosition } from "@vp/contracts";
import { COLUMN_GAP, ESTIMATED_HEIGHT, NODE_WIDTH, ROW_GAP } from "./layout";

/** A node as the layout sees it: its edges (inputs) and, once React Flow has measured it, its size on screen. */
export interface LayoutInput {
  id: string;
  inputs: Record<string, string[]>;
  width?: number;
  height?: number;
}

/**
 * "Auto-layout": a layered left-to-right layout (dagre, the Sugiyama method) of the whole graph: every node in a
 * column after the nodes it takes input from, edge crossings reduced, and no two boxes overlapping (each node's
 * measured size, or an estimate before it is measured). Returns each node's top-left corner, as React Flow places
 * nodes. Inputs naming nodes that are not in `nodes` are ignored.
 */
export function autoLayout(nodes: readonly LayoutInput[]): Map<string, NodePosition> {
  const graph = new dagre.graphlib.Graph({ multigraph: true });
  graph.setGraph({ rankdir: "LR", nodesep: ROW_GAP, ranksep: COLUMN_GAP, marginx: 0, marginy: 0 });
  graph.setDefaultEdgeLabel(() => ({}));
  const ids = new Set(nodes.map((n) => n.id));
  for (const n of nodes) graph.setNode(n.id, { width: n.width ?? NODE_WIDTH, height: n.height ?? ESTIMATED_HEIGHT });
  for (const n of nodes) {
    for (const [slot, sources] of Object.entries(n.inputs ?? {})) {
      sources.forEach((source, index) => {
        if (ids.has(source) && source !== n.id) graph.setEdge(source, n.id, {}, `${slot}:${index}`);
      });
    }
  }
  dagre.layout(graph);
  const out = new Map<string, NodePosition>();
  for (const n of nodes) {
    const placed = graph.node(n.id);
    // dagre gives centres; React Flow wants top-left corners. Whole pixels keep saved positions tidy.
    out.set(n.id, { x: Math.round(placed.x - placed.width / 2), y: Math.round(placed.y - placed.height / 2) });
  }
  return out;
}
