"use client";

import { useCallback, useState } from "react";
import { useReactFlow } from "@xyflow/react";
import type { NodePosition, NodeType } from "@vp/contracts";
import type { EditorNode } from "@/lib/graph-state";
import { typesTakingOutputOf } from "@/lib/node-edits";

type AddNode = (type: NodeType, at?: { position: NodePosition; inputs?: Record<string, string[]> }) => Promise<void>;

/**
 * What lands on the canvas: a node type dragged from the palette is created where it is dropped; a connection
 * dragged out of an output and dropped on empty canvas opens the node search with the types that can take that
 * output, and the one picked is created there, connected.
 */
export function useCanvasDrops(addNode: AddNode) {
  const rf = useReactFlow();
  const [picking, setPicking] = useState<{ sourceId: string; position: NodePosition } | null>(null);

  const typeDropped = useCallback(
    (type: NodeType, at: { x: number; y: number }) => void addNode(type, { position: rf.screenToFlowPosition(at) }),
    [addNode, rf],
  );
  const connectionDropped = useCallback(
    (sourceId: string, at: { x: number; y: number }) => setPicking({ sourceId, position: rf.screenToFlowPosition(at) }),
    [rf],
  );
  const pick = useCallback(
    (type: NodeType, source: EditorNode) => {
      const at = picking;
      setPicking(null);
      const slot = typesTakingOutputOf(source).find((t) => t.type === type)?.slot;
      if (at) void addNode(type, { position: at.position, ...(slot ? { inputs: { [slot]: [source.id] } } : {}) });
    },
    [addNode, picking],
  );
  const cancel = useCallback(() => setPicking(null), []);
  return { picking, typeDropped, connectionDropped, pick, cancel };
}
