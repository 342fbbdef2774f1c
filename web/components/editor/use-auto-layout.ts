"use client";

import { useCallback } from "react";
import { useReactFlow } from "@xyflow/react";
import { autoLayout } from "@/lib/auto-layout";
import { savePositions, type Move, type WriteDeps } from "./use-node-writes";

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
    const moves: Move[] = onCanvas
      .map((n) => ({ id: n.id, from: { x: Math.round(n.position.x), y: Math.round(n.position.y) }, to: placed.get(n.id)! }))
      .filter((m) => m.to.x !== m.from.x || m.to.y !== m.from.y);
    for (const m of moves) moveNode(m.id, m.to);
    fitSoon();
    await savePositions({ api, pipelineId, dispatch, toast, latest, record }, moves, "Auto-layout");
  }, [api, pipelineId, dispatch, toast, latest, record, rf, moveNode, fitSoon]);
}
