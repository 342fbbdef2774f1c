import { INPUT_SCHEMAS, type NodePosition, type NodeType } from "@vp/contracts";

export const NODE_WIDTH = 264;
export const COLUMN_GAP = 110;
export const ROW_GAP = 36;
/** Used before a node has been measured. */
export const ESTIMATED_HEIGHT = 250;

interface LayoutNode {
  id: string;
  type: NodeType;
  inputs: Record<string, string[]>;
  position?: NodePosition | null;
}

/**
 * Positions for nodes that have none yet (created through the API, imported without positions): layered
 * left to right by the longest path from a source, stacked top to bottom in each layer. Nodes that have
 * a position keep it.
 */
export function layoutMissing(nodes: readonly LayoutNode[]): Map<string, NodePosition> {
  const byId = new Map(nodes.map((n) => [n.id, n]));
  const depth = new Map<string, number>();
  const visiting = new Set<string>();
  const depthOf = (id: string): number => {
    const known = depth.get(id);
    if (known !== undefined) return known;
    if (visiting.has(id)) return 0; // a cycle (refused by the gateway anyway)
    visiting.add(id);
    const node = byId.get(id);
    const ups = node
      ? Object.values(node.inputs ?? {})
          .flat()
          .filter((up) => byId.has(up))
      : [];
    const d = ups.length ? Math.max(...ups.map(depthOf)) + 1 : 0;
    visiting.delete(id);
    depth.set(id, d);
    return d;
  };
  const rows = new Map<number, number>();
  const out = new Map<string, NodePosition>();
  for (const node of nodes) {
    if (node.position) {
      out.set(node.id, node.position);
      continue;
    }
    const d = depthOf(node.id);
    const row = rows.get(d) ?? 0;
    rows.set(d, row + 1);
    out.set(node.id, { x: d * (NODE_WIDTH + COLUMN_GAP), y: row * (ESTIMATED_HEIGHT + ROW_GAP) });
  }
  return out;
}

interface PlacedNode {
  position: NodePosition;
  width?: number;
  height?: number;
}

/**
 * Where a node added from the palette goes. Beside the selected node when there is one (to its right, moved down
 * past anything already there), where the producer is working; else sources (no input slots) in the first column,
 * everything else in the column right of the rightmost node that is not a source, below whatever is in that column.
 */
export function placeNewNode(type: NodeType, existing: readonly PlacedNode[], selected?: PlacedNode): NodePosition {
  if (selected) return besideSelected(existing, selected);
  const isSource = Object.keys(INPUT_SCHEMAS[type]).length === 0;
  const step = NODE_WIDTH + COLUMN_GAP;
  const minX = existing.length ? Math.min(...existing.map((n) => n.position.x)) : 0;
  let x = minX;
  if (!isSource) {
    const firstColumn = existing.filter((n) => n.position.x < minX + step / 2);
    const others = existing.filter((n) => !firstColumn.includes(n));
    x = others.length ? Math.max(...others.map((n) => n.position.x)) : minX + step;
  }
  const column = existing.filter((n) => Math.abs(n.position.x - x) < step / 2);
  const y = column.length ? Math.max(...column.map((n) => n.position.y + (n.height ?? ESTIMATED_HEIGHT))) + ROW_GAP : 0;
  return { x: Math.round(x), y: Math.round(y) };
}

function besideSelected(existing: readonly PlacedNode[], selected: PlacedNode): NodePosition {
  const x = selected.position.x + (selected.width ?? NODE_WIDTH) + COLUMN_GAP;
  let y = selected.position.y;
  const overlaps = (n: PlacedNode) =>
    n.position.x < x + NODE_WIDTH &&
    x < n.position.x + (n.width ?? NODE_WIDTH) &&
    n.position.y < y + ESTIMATED_HEIGHT &&
    y < n.position.y + (n.height ?? ESTIMATED_HEIGHT);
  for (let blocker = existing.find(overlaps); blocker; blocker = existing.find(overlaps)) {
    y = blocker.position.y + (blocker.height ?? ESTIMATED_HEIGHT) + ROW_GAP;
  }
  return { x: Math.round(x), y: Math.round(y) };
}
