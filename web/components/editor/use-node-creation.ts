"use client";

import { useCallback, useState } from "react";
import { useReactFlow } from "@xyflow/react";
import type { NodePosition, NodeType } from "@vp/contracts";
import { errorMessage } from "@/lib/api";
import { newNode } from "@/lib/node-edits";
import type { WriteDeps } from "./use-node-writes";

/** Adds a node from the palette beside the selected node (or what is on the canvas), then fits the view; `adding` while it is sent. */
export function useNodeCreation({ api, pipelineId, dispatch, toast, latest, record, fitSoon }: WriteDeps & { fitSoon: () => void }) {
  const rf = useReactFlow();
  const [adding, setAdding] = useState(false);
  const addNode = useCallback(
    async (type: NodeType, at?: { position: NodePosition; inputs?: Record<string, string[]> }) => {
      setAdding(true);
      try {
        const onCanvas = rf.getNodes().map((n) => ({ position: n.position, width: n.measured?.width, height: n.measured?.height, selected: n.selected }));
        const selected = onCanvas.filter((n) => n.selected);
        const placed = newNode(type, latest.current.nodes, onCanvas, selected.length === 1 ? selected[0] : undefined);
        // Dropped on the canvas (from the palette, or a connection dragged out of an output): there, connected.
        const body = at
          ? { ...placed, position: { x: Math.round(at.position.x), y: Math.round(at.position.y) }, ...(at.inputs ? { inputs: at.inputs } : {}) }
          : placed;
        const { node } = await api.createNode(pipelineId, body);
        dispatch({ kind: "added", node });
        record?.({ label: `Add "${node.title}"`, undo: [{ kind: "delete", id: node.id }], redo: [{ kind: "create", node: body }] });
        if (!at) fitSoon();
      } catch (error) {
        toast(`Node not added: ${errorMessage(error)}`);
      } finally {
        setAdding(false);
      }
    },
    [api, pipelineId, rf, dispatch, toast, fitSoon, latest, record],
  );
  return { addNode, adding };
}
