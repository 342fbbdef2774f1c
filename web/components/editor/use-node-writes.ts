"use client";

import { useCallback, useRef, useState, type RefObject } from "react";
import type { Node } from "@xyflow/react";
import type { NodePosition } from "@vp/contracts";
import type { NodeLookup } from "@vp/flow-graph";
import { ApiError, errorMessage, type Api, type ApiNode } from "@/lib/api";
import { storedPosition } from "@/lib/canvas";
import type { EditorNode, GraphAction } from "@/lib/graph-state";
import { OwnRevisions } from "@/lib/node-edits";
import { describePatch, inversePatch, type StructureWrite, type UndoEntry } from "@/lib/undo";
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
  /** Records an accepted edit in the undo history (absent: nothing is recorded). */
  record?: (entry: UndoEntry) => void;
}

/** A refused conditional write: the node as it is now, who changed it and the gateway's sentence. */
export interface Conflict {
  current: ApiNode;
  by?: string;
  message: string;
}

export interface UpdateOptions {
  /** False for writes that are part of a larger edit (which records itself) or are an undo themselves. */
  undoable?: boolean;
  /** The node revision the edit was based on: a node changed since (elsewhere) is not overwritten. */
  ifRevision?: number;
  /** Called instead of a toast when the write was refused because the node changed since `ifRevision`. */
  onConflict?: (conflict: Conflict) => void;
  /** Called with the saved node (its new revision is what a later edit of the same draft is based on). */
  onSaved?: (node: ApiNode) => void;
}

export type UpdateNode = (id: string, patch: NodePatch, options?: UpdateOptions) => Promise<boolean>;

/** The conflict a 409 answer describes, if it is one (the node changed since the revision the write named). */
export function conflictOf(error: unknown): Conflict | undefined {
  if (!(error instanceof ApiError) || error.status !== 409) return undefined;
  const body = error.body as { node?: ApiNode; by?: string } | undefined;
  return body?.node ? { current: body.node, by: body.by, message: error.message } : undefined;
}

/**
 * The one structure write: PATCH the node, put the saved node in the model, or say why it was refused. A write
 * based on a revision another page has since replaced is refused by the gateway; the model then shows the current
 * node and the caller (or a toast) says what happened.
 */
export function useUpdateNode({ api, pipelineId, dispatch, toast, latest, record }: WriteDeps): UpdateNode {
  // One write per node at a time, each based on what the one before it saved (see OwnRevisions).
  const [own] = useState(() => new OwnRevisions());
  const queues = useRef(new Map<string, Promise<unknown>>());
  const write = useCallback(
    async (id: string, patch: NodePatch, options: UpdateOptions): Promise<boolean> => {
      const nodes = latest.current.nodes;
      const before = nodes.get(id);
      const current = own.current(id, before?.revision);
      const ifRevision = options.ifRevision === undefined ? undefined : own.rebase(id, options.ifRevision, current);
      try {
        const { node } = await api.updateNode(pipelineId, id, patch, { ifRevision });
        own.wrote(id, current, node.revision);
        dispatch({ kind: "saved", node });
        options.onSaved?.(node);
        if (before && options.undoable !== false) {
          record?.({
            label: describePatch(before, patch, nodes),
            undo: [{ kind: "update", id, patch: inversePatch(before, patch) }],
            redo: [{ kind: "update", id, patch }],
          });
        }
        return true;
      } catch (error) {
        const conflict = conflictOf(error);
        if (conflict) {
          dispatch({ kind: "saved", node: conflict.current });
          if (options.onConflict) options.onConflict(conflict);
          else toast(`${conflict.message}. It now shows the current version.`);
          return false;
        }
        toast(`Not saved: ${errorMessage(error)}`);
        return false;
      }
    },
    [api, pipelineId, dispatch, toast, latest, record, own],
  );
  return useCallback(
    (id: string, patch: NodePatch, options: UpdateOptions = {}) => {
      const next = (queues.current.get(id) ?? Promise.resolve()).catch(() => undefined).then(() => write(id, patch, options));
      queues.current.set(id, next);
      return next;
    },
    [write],
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

/** A node's move: where it was (for undo) and where it goes. */
export interface Move {
  id: string;
  from?: NodePosition;
  to: NodePosition;
}

/**
 * Saves new positions (their own column: a move is never a config change) and records the saved ones as one
 * undoable edit named `label`. Used by dragging and by Auto-layout.
 */
export async function savePositions({ api, pipelineId, dispatch, toast, record }: WriteDeps, moves: Move[], label: string): Promise<void> {
  const undo: StructureWrite[] = [];
  const redo: StructureWrite[] = [];
  await Promise.all(
    moves.map(async ({ id, from, to }) => {
      try {
        const { node } = await api.updateNode(pipelineId, id, { position: to });
        dispatch({ kind: "saved", node });
        redo.push({ kind: "update", id, patch: { position: to } });
        if (from) undo.push({ kind: "update", id, patch: { position: { x: from.x, y: from.y } } });
      } catch (error) {
        toast(`Position not saved: ${errorMessage(error)}`);
      }
    }),
  );
  if (undo.length) record?.({ label, undo, redo });
}

/** Saves where nodes were dragged to, as one undoable move. */
export function usePositionSave({ api, pipelineId, dispatch, toast, latest, record }: WriteDeps) {
  return useCallback(
    async (_event: unknown, _node: Node, moved: Node[]) => {
      const nodes = latest.current.nodes;
      const label = moved.length === 1 ? `Move "${nodes.get(moved[0]!.id)?.title ?? moved[0]!.id}"` : `Move ${moved.length} nodes`;
      const moves = moved.map((n) => ({ id: n.id, from: nodes.get(n.id)?.position ?? undefined, to: storedPosition(n.position) }));
      await savePositions({ api, pipelineId, dispatch, toast, latest, record }, moves, label);
    },
    [api, pipelineId, dispatch, toast, latest, record],
  );
}
