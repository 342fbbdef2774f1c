"use client";

import { useCallback } from "react";
import type { Connection, Edge, FinalConnectionState } from "@xyflow/react";
import { connectionProblem } from "@vp/flow-graph";
import { connectPatch, refusalReason } from "@/lib/connections";
import type { LatestGraph, UpdateNode } from "./use-node-writes";

/**
 * Drawing edges: React Flow asks whether a connection is allowed (the same check the gateway applies), a
 * finished one is saved as the target's inputs, and a refused drop says why in a toast.
 */
export function useConnections({
  latest,
  toast,
  updateNode,
  onDropOnCanvas,
}: {
  latest: LatestGraph;
  toast: (message: string) => void;
  updateNode: UpdateNode;
  /** An output's connection dropped on empty canvas, at this point of the screen: offer to create a node fed by it. */
  onDropOnCanvas: (sourceId: string, at: { x: number; y: number }) => void;
}) {
  const isValidConnection = useCallback(
    (c: Connection | Edge) =>
      !!c.targetHandle && connectionProblem(latest.current.lookup, { source: c.source, target: c.target, slot: c.targetHandle }) === null,
    [latest],
  );

  const onConnect = useCallback(
    async (c: Connection) => {
      const target = latest.current.nodes.get(c.target);
      if (!target || !c.targetHandle) return;
      const problem = connectionProblem(latest.current.lookup, { source: c.source, target: c.target, slot: c.targetHandle });
      if (problem) {
        toast(`Not connected: ${problem}`);
        return;
      }
      await updateNode(c.target, { inputs: connectPatch(target, c.source, c.targetHandle) });
    },
    [toast, updateNode, latest],
  );

  const onConnectEnd = useCallback(
    (event: MouseEvent | TouchEvent, state: FinalConnectionState) => {
      if (!state.toHandle && state.fromHandle?.type === "source" && state.fromNode) {
        const point = "changedTouches" in event ? event.changedTouches[0]! : event;
        onDropOnCanvas(state.fromNode.id, { x: point.clientX, y: point.clientY });
        return;
      }
      if (state.isValid !== false || !state.toHandle || !state.fromHandle || !state.fromNode) return;
      const reason = refusalReason(latest.current.lookup, state.fromHandle, state.toHandle);
      if (reason) toast(`Not connected: ${reason}`);
    },
    [toast, latest, onDropOnCanvas],
  );

  return { isValidConnection, onConnect, onConnectEnd };
}
