"use client";

import { useCallback } from "react";
import type { Edge, Node } from "@xyflow/react";
import { errorMessage } from "@/lib/api";
import { inputsWithout } from "@/lib/graph-state";
import { dependantPatches, isRunning } from "@/lib/node-edits";
import { inversePatch, nodeBody, type StructureWrite } from "@/lib/undo";
import type { UpdateNode, WriteDeps } from "./use-node-writes";

/**
 * Deleting nodes and edges through the gateway: a node is first taken out of every node that uses it, an edge is
 * its target's inputs without it. The model changes when the gateway has accepted.
 */
export function useNodeRemoval({
  api,
  pipelineId,
  dispatch,
  toast,
  latest,
  record,
  updateNode,
  onDeleted,
}: WriteDeps & { updateNode: UpdateNode; onDeleted: () => void }) {
  const removeNode = useCallback(
    async (id: string) => {
      const { nodes } = latest.current;
      const node = nodes.get(id);
      if (!node) return;
      if (isRunning(node)) {
        toast(`"${node.title}" is running; delete it when it has finished`);
        return;
      }
      const dependants = dependantPatches(nodes, id);
      const undo: StructureWrite[] = [{ kind: "create", node: nodeBody(node) }];
      const redo: StructureWrite[] = [];
      for (const patch of dependants) {
        const before = nodes.get(patch.id);
        if (!(await updateNode(patch.id, { inputs: patch.inputs }, { undoable: false }))) return;
        if (before) undo.push({ kind: "update", id: patch.id, patch: inversePatch(before, { inputs: patch.inputs }) });
        redo.push({ kind: "update", id: patch.id, patch: { inputs: patch.inputs } });
      }
      try {
        await api.deleteNode(pipelineId, id);
        dispatch({ kind: "removed", id });
        redo.push({ kind: "delete", id });
        record?.({ label: `Delete "${node.title}"`, undo, redo });
      } catch (error) {
        toast(`"${node.title}" not deleted: ${errorMessage(error)}`);
      }
    },
    [api, pipelineId, dispatch, toast, updateNode, latest, record],
  );

  const removeEdge = useCallback(
    async (edge: Pick<Edge, "source" | "target" | "targetHandle">) => {
      const target = latest.current.nodes.get(edge.target);
      if (!target || !edge.targetHandle) return;
      const patch = inputsWithout(target.inputs ?? {}, edge.source, edge.targetHandle);
      if (Object.keys(patch).length) await updateNode(target.id, { inputs: patch });
    },
    [updateNode, latest],
  );

  // Keyboard Delete/Backspace (React Flow) deletes through the gateway; React Flow itself removes nothing.
  const onBeforeDelete = useCallback(
    async ({ nodes, edges }: { nodes: Node[]; edges: Edge[] }) => {
      const doomed = new Set(nodes.map((n) => n.id));
      for (const edge of edges) if (!doomed.has(edge.source) && !doomed.has(edge.target)) await removeEdge(edge);
      for (const id of doomed) await removeNode(id);
      onDeleted();
      return false;
    },
    [removeEdge, removeNode, onDeleted],
  );

  return { removeNode, onBeforeDelete };
}
