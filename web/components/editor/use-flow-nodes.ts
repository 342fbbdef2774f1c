"use client";

import { useCallback, useEffect, useState } from "react";
import { applyNodeChanges, type EdgeChange, type Node, type NodeChange } from "@xyflow/react";
import { deselectAll, selectOnly, syncFlowNodes, withEdgeSelection } from "@/lib/canvas";
import type { EditorNode } from "@/lib/graph-state";

/**
 * What React Flow owns on the canvas: node positions, sizes and selection, and which edges are selected.
 * Deletions are left out of the change handlers: they go through the gateway first (onBeforeDelete).
 */
export function useFlowNodes(nodes: ReadonlyMap<string, EditorNode>) {
  const [rfNodes, setRfNodes] = useState<Node[]>([]);
  const [selectedEdges, setSelectedEdges] = useState<ReadonlySet<string>>(new Set());

  useEffect(() => {
    setRfNodes((previous) => syncFlowNodes(previous, nodes));
  }, [nodes]);

  const select = useCallback((id: string | null) => setRfNodes((nds) => selectOnly(nds, id)), []);
  /** Exactly these nodes selected (select all, pasted nodes). */
  const selectMany = useCallback((ids: string[]) => {
    const wanted = new Set(ids);
    setRfNodes((nds) => nds.map((n) => (n.selected === wanted.has(n.id) ? n : { ...n, selected: wanted.has(n.id) })));
  }, []);
  /** Puts a node where an undo or redo moved it (React Flow owns positions once a node is on the canvas). */
  const moveNode = useCallback(
    (id: string, position: { x: number; y: number }) => setRfNodes((nds) => nds.map((n) => (n.id === id ? { ...n, position } : n))),
    [],
  );

  const clearEdgeSelection = useCallback(() => setSelectedEdges(new Set()), []);

  const deselect = useCallback(() => {
    setRfNodes(deselectAll);
    setSelectedEdges((s) => (s.size ? new Set() : s));
  }, []);

  const onNodesChange = useCallback((changes: NodeChange[]) => {
    setRfNodes((nds) =>
      applyNodeChanges(
        changes.filter((c) => c.type !== "remove"),
        nds,
      ),
    );
  }, []);

  const onEdgesChange = useCallback((changes: EdgeChange[]) => {
    const selects = changes.filter((c) => c.type === "select");
    if (!selects.length) return;
    setSelectedEdges((current) => withEdgeSelection(current, selects));
  }, []);

  return { rfNodes, selectedEdges, select, selectMany, moveNode, clearEdgeSelection, deselect, onNodesChange, onEdgesChange };
}
