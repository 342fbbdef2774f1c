"use client";

import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import type { NodePosition } from "@vp/contracts";
import { errorMessage } from "@/lib/api";
import { UndoHistory, type StructureWrite, type UndoEntry } from "@/lib/undo";
import type { WriteDeps } from "./use-node-writes";

export interface UndoController {
  /** Records an edit the producer just made (its writes were accepted). */
  record(entry: UndoEntry): void;
  undo(): Promise<void>;
  redo(): Promise<void>;
  /** What the next undo and redo would revert or repeat, for the buttons; undefined when there is none. */
  undoLabel?: string;
  redoLabel?: string;
}

/**
 * Undo and redo of structure edits, with Ctrl+Z / Ctrl+Shift+Z / Ctrl+Y (Cmd on a Mac) outside text fields, where
 * the browser's own text undo applies. One undo or redo at a time; a write the gateway refuses leaves the history
 * as it was and says why.
 */
export function useUndo({ api, pipelineId, dispatch, toast, onMoved }: Omit<WriteDeps, "latest"> & { onMoved: (id: string, position: NodePosition) => void }) {
  const history = useRef(new UndoHistory());
  const [, setVersion] = useState(0);
  const changed = useCallback(() => setVersion((v) => v + 1), []);
  const busy = useRef<Promise<void>>(Promise.resolve());

  const apply = useCallback(
    async (writes: StructureWrite[]) => {
      for (const write of writes) {
        if (write.kind === "update") {
          const { node } = await api.updateNode(pipelineId, write.id, write.patch);
          dispatch({ kind: "saved", node });
          if (write.patch.position) onMoved(write.id, write.patch.position);
        } else if (write.kind === "create") {
          const { node } = await api.createNode(pipelineId, write.node);
          dispatch({ kind: "added", node });
        } else {
          await api.deleteNode(pipelineId, write.id);
          dispatch({ kind: "removed", id: write.id });
        }
      }
    },
    [api, pipelineId, dispatch, onMoved],
  );

  const step = useCallback(
    (direction: "undo" | "redo") => {
      busy.current = busy.current.then(async () => {
        const entry = direction === "undo" ? history.current.nextUndo : history.current.nextRedo;
        if (!entry) return;
        try {
          await apply(direction === "undo" ? entry.undo : entry.redo);
          if (direction === "undo") history.current.markUndone(entry);
          else history.current.markRedone(entry);
        } catch (error) {
          toast(`Could not ${direction} "${entry.label}": ${errorMessage(error)}`);
        }
        changed();
      });
      return busy.current;
    },
    [apply, toast, changed],
  );

  const record = useCallback(
    (entry: UndoEntry) => {
      history.current.record(entry);
      changed();
    },
    [changed],
  );
  const undo = useCallback(() => step("undo"), [step]);
  const redo = useCallback(() => step("redo"), [step]);

  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (!(event.ctrlKey || event.metaKey) || event.altKey) return;
      const target = event.target as HTMLElement | null;
      if (target?.closest("input, textarea, select, [contenteditable='true']")) return;
      const key = event.key.toLowerCase();
      if (key === "z" && !event.shiftKey) {
        event.preventDefault();
        void undo();
      } else if ((key === "z" && event.shiftKey) || key === "y") {
        event.preventDefault();
        void redo();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [undo, redo]);

  const undoLabel = history.current.nextUndo?.label;
  const redoLabel = history.current.nextRedo?.label;
  return useMemo<UndoController>(() => ({ record, undo, redo, undoLabel, redoLabel }), [record, undo, redo, undoLabel, redoLabel]);
}
