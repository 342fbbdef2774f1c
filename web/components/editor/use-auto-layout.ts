"use client";

import { useCallback } from "react";
import { useReactFlow } from "@xyflow/react";
import { errorMessage } from "@/lib/api";
import { autoLayout } from "@/lib/auto-layout";
import type { StructureWrite } from "@/lib/undo";
import type { WriteDeps } from "./use-node-writes";

/**
 * The header's Auto-layout: lays the whole graph out left to right by its data flow (sizes as measured on the
 * canvas), moves the nodes, saves their positions (one undoable edit) and fits the view.
 */
export function useAutoLayout({
  api,
  pipelineId,
  dispatch,
  toast,
  latest,
  record,
  moveNode,
  fitSoon,
}: WriteDeps & { moveNode: (id: string, position: { x: number; y: number }) => void; fitSoon: () => void }) {
  const rf = useReactFlow();
  return useCallback(async () => {
    const model = latest.current.nodes;
    const onCanvas = rf.getNodes().filter((n) => model.has(n.id));
    const placed = autoLayout(onCanvas.map((n) => ({ id: n.id, inputs: model.get(n.id)!.inputs ?? {}, width: n.measured?.width, height: n.measured?.height })));
    const undo: StructureWrite[] = [];
    const redo: StructureWrite[] = [];
    const moves = onCanvas.filter((n) => {
      const to = placed.get(n.id)!;
      return to.x !== Math.round(n.position.x) || to.y !== Math.round(n.position.y);
    });
    for (const n of moves) moveNode(n.id, placed.get(n.id)!);
    fitSoon();
    const failures: string[] = [];
    await Promise.all(
      moves.map(async (n) => {
        const position = placed.get(n.id)!;
        try {
          const { node } = await api.updateNode(pipelineId, n.id, { position });
          dispatch({ kind: "saved", node });
          redo.push({ kind: "update", id: n.id, patch: { position } });
          undo.push({ kind: "update", id: n.id, patch: { position: { x: Math.round(n.position.x), y: Math.round(n.position.y) } } });
        } catch (error) {
          failures.push(errorMessage(error));
        }
      }),
    );
    if (failures.length) toast(`Layout not saved for ${failures.length} node(s): ${failures[0]}`);
    if (undo.length) record?.({ label: "Auto-layout", undo, redo });
  }, [api, pipelineId, dispatch, toast, latest, record, rf, moveNode, fitSoon]);
}
