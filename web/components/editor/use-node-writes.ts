"use client";

import { useCallback, useState, type RefObject } from "react";
import type { Node } from "@xyflow/react";
import type { NodeLookup } from "@vp/flow-graph";
import { errorMessage, type Api } from "@/lib/api";
import { storedPosition } from "@/lib/canvas";
import type { EditorNode, GraphAction } from "@/lib/graph-state";
import type { NodePatch } from "./context";

/** The model as of the last render, for callbacks that must not change identity with every event. */
export type LatestGraph = RefObject<{ nodes: ReadonlyMap<string, EditorNode>; lookup: NodeLookup }>;

/** What every write from the editor needs: the gateway, the model to update on success, and a toast on failure. */
export interface WriteDeps {
  api: Api;
  pipelineId: string;
  dispatch: (a: GraphAction) => void;
  toast: (message: string, kind?: "error" | "info") => void;
  latest: LatestGraph;
}

export type UpdateNode = (id: string, patch: NodePatch) => Promise<boolean>;

/** The one structure write: PATCH the node, put the saved node in the model, or say why it was refused. */
export function useUpdateNode({ api, pipelineId, dispatch, toast }: WriteDeps): UpdateNode {
  return useCallback(
    async (id: string, patch: NodePatch): Promise<boolean> => {
      try {
        const { node } = await api.updateNode(pipelineId, id, patch);
        dispatch({ kind: "saved", node });
        return true;
      } catch (error) {
        toast(`Not saved: ${errorMessage(error)}`);
        return false;
      }
    },
    [api, pipelineId, dispatch, toast],
  );
}

/** Executes one node; `executing` holds the nodes whose request is still out. */
export function useExecute({ api, pipelineId, toast }: WriteDeps) {
  const [executing, setExecuting] = useState<ReadonlySet<string>>(new Set());
  const execute = useCallback(
    async (id: string) => {
      setExecuting((s) => new Set(s).add(id));
      try {
        await api.executeNode(pipelineId, id);
      } catch (error) {
        toast(`Not started: ${errorMessage(error)}`);
      } finally {
        setExecuting((s) => {
          const next = new Set(s);
          next.delete(id);
          return next;
        });
      }
    },
    [api, pipelineId, toast],
  );
  return { execute, executing };
}

/** Saves where nodes were dragged to. Positions are their own column: saving one is never a config change. */
export function usePositionSave({ api, pipelineId, dispatch, toast }: WriteDeps) {
  return useCallback(
    (_event: unknown, _node: Node, moved: Node[]) => {
      for (const n of moved) {
        api
          .updateNode(pipelineId, n.id, { position: storedPosition(n.position) })
          .then(({ node }) => dispatch({ kind: "saved", node }))
          .catch((error) => toast(`Position not saved: ${errorMessage(error)}`));
      }
    },
    [api, pipelineId, dispatch, toast],
  );
}
