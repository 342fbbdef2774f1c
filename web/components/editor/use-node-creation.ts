"use client";

import { useCallback, useState } from "react";
import { useReactFlow } from "@xyflow/react";
import type { NodeType } from "@vp/contracts";
import { errorMessage } from "@/lib/api";
import { newNode } from "@/lib/node-edits";
import type { WriteDeps } from "./use-node-writes";

/** Adds a node from the palette beside the selected node (or what is on the canvas), then fits the view; `adding` while it is sent. */
export function useNodeCreation({ api, pipelineId, dispatch, toast, latest, record, fitSoon }: WriteDeps & { fitSoon: () => void }) {
  const rf = useReactFlow();
  const [adding, setAdding] = useState(false);
  const addNode = useCallback(
    async (type: NodeType) => {
      setAdding(true);
      try {
        const onCanvas = rf.getNodes().map((n) => ({ position: n.position, width: n.measured?.width, height: n.measured?.height, selected: n.selected }));
        const selected = onCanvas.filter((n) => n.selected);
        const body = newNode(type, latest.current.nodes, onCanvas, selected.length === 1 ? selected[0] : undefined);
        const { node } = await api.createNode(pipelineId, body);
        dispatch({ kind: "added", node });
        record?.({ label: `Add "${node.title}"`, undo: [{ kind: "delete", id: node.id }], redo: [{ kind: "create", node: body }] });
        fitSoon();
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
