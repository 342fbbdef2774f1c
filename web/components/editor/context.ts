"use client";

import { createContext, useContext } from "react";
import type { Variable } from "@vp/contracts";
import type { NodeLookup } from "@vp/flow-graph";
import type { Api } from "@/lib/api";
import type { EditorNode } from "@/lib/graph-state";
import type { StructurePatch } from "@/lib/undo";
import type { RunsController } from "./use-runs";
import type { UpdateOptions } from "./use-node-writes";
import type { UndoController } from "./use-undo";

/** A structure change of one node, as the gateway's PATCH takes it. */
export type NodePatch = StructurePatch;

/** What node cards and the panel need from the editor: the model and the one write path. */
export interface EditorContextValue {
  pipelineId: string;
  api: Api;
  nodes: ReadonlyMap<string, EditorNode>;
  lookup: NodeLookup;
  /** Saves a structure change through the gateway (recorded for undo); resolves false (and shows why) when it was refused. */
  updateNode(id: string, patch: NodePatch, options?: UpdateOptions): Promise<boolean>;
  execute(id: string): Promise<void>;
  executing: ReadonlySet<string>;
  upload(id: string, file: File): Promise<void>;
  /** Upload progress per node (0..1) while a file is being sent. */
  uploads: ReadonlyMap<string, number>;
  /** Text/JSON asset content as typed (saved debounced), shared by the node and the panel. */
  textDraft(id: string): string | undefined;
  setTextDraft(id: string, text: string): void;
  /** Deletes a node through the gateway (taking it out of its dependants' inputs first). */
  removeNode(id: string): Promise<void>;
  toast(message: string, kind?: "error" | "info"): void;
  select(id: string | null): void;
  /** Runs: run to here, cancel, retry, and the graph problems a run would be refused for, per node. */
  runs: RunsController;
  /** Nodes runs leave out: each disabled node and everything downstream of it (blockedByDisabled, once per change). */
  blocked: ReadonlyMap<string, string>;
  /** Completed nodes whose result no longer matches the graph (shown as "Outdated" until a run replaces it). */
  outdated: ReadonlySet<string>;
  /** Undo and redo of structure edits. */
  undo: UndoController;
  /** Copies these nodes (with the connections between them) beside the originals. */
  duplicate(ids: string[]): Promise<void>;
  /** The pipeline's declared variables (placeholders are checked against them, media assets bound to them). */
  variables: readonly Variable[];
  /** Why this user cannot change the pipeline (signed in without the editor role), or null: every control is live. */
  readOnly: string | null;
}

export const EditorContext = createContext<EditorContextValue | null>(null);

export function useEditor(): EditorContextValue {
  const value = useContext(EditorContext);
  if (!value) throw new Error("useEditor outside the editor");
  return value;
}
