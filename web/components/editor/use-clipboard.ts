"use client";

import { useCallback, useEffect } from "react";
import { useReactFlow } from "@xyflow/react";
import type { DocumentNode } from "@vp/contracts";
import { errorMessage } from "@/lib/api";
import { copyText, parseCopied, pasteBodies } from "@/lib/clipboard";
import type { StructureWrite } from "@/lib/undo";
import type { WriteDeps } from "./use-node-writes";

/** A key press or clipboard event inside a text field is the field's own (text copy, paste, select all). */
function inField(target: EventTarget | null): boolean {
  return !!(target as HTMLElement | null)?.closest?.("input, textarea, select, [contenteditable='true']");
}

/**
 * Copy (Ctrl+C), paste (Ctrl+V, also into another pipeline), duplicate (Ctrl+D or the panel's button) and select
 * all (Ctrl+A) on the canvas. Pasted nodes are created through the gateway, selected, and undone as one edit.
 */
export function useClipboard({
  api,
  pipelineId,
  dispatch,
  toast,
  latest,
  record,
  selectMany,
  readOnly = false,
}: WriteDeps & { selectMany: (ids: string[]) => void; readOnly?: boolean }) {
  const rf = useReactFlow();

  const paste = useCallback(
    async (copied: DocumentNode[]) => {
      const bodies = pasteBodies(copied, latest.current.nodes);
      const created: typeof bodies = [];
      for (const body of bodies) {
        try {
          const { node } = await api.createNode(pipelineId, body);
          dispatch({ kind: "added", node });
          created.push(body);
        } catch (error) {
          toast(`"${body.title}" not pasted: ${errorMessage(error)}`);
          break;
        }
      }
      if (!created.length) return;
      const undo: StructureWrite[] = created.map((b) => ({ kind: "delete" as const, id: b.id })).reverse();
      const redo: StructureWrite[] = created.map((b) => ({ kind: "create" as const, node: b }));
      record?.({ label: created.length === 1 ? `Paste "${created[0]!.title}"` : `Paste ${created.length} nodes`, undo, redo });
      selectMany(created.map((b) => b.id));
    },
    [api, pipelineId, dispatch, toast, latest, record, selectMany],
  );

  const duplicate = useCallback(
    async (ids: string[]) => {
      const copied = parseCopied(copyText(latest.current.nodes, ids));
      if (copied) await paste(copied);
    },
    [paste, latest],
  );

  useEffect(() => {
    const selectedIds = () =>
      rf
        .getNodes()
        .filter((n) => n.selected)
        .map((n) => n.id);
    const onCopy = (event: ClipboardEvent) => {
      if (inField(event.target)) return;
      const ids = selectedIds();
      if (!ids.length || !event.clipboardData) return;
      event.clipboardData.setData("text/plain", copyText(latest.current.nodes, ids));
      event.preventDefault();
      toast(ids.length === 1 ? "Copied 1 node" : `Copied ${ids.length} nodes`, "info");
    };
    const onPaste = (event: ClipboardEvent) => {
      if (inField(event.target) || readOnly) return;
      const copied = parseCopied(event.clipboardData?.getData("text/plain") ?? "");
      if (!copied) return;
      event.preventDefault();
      void paste(copied);
    };
    const onKey = (event: KeyboardEvent) => {
      if (!(event.ctrlKey || event.metaKey) || event.altKey || event.shiftKey || inField(event.target)) return;
      const key = event.key.toLowerCase();
      if (key === "d" && !readOnly) {
        event.preventDefault();
        const ids = selectedIds();
        if (ids.length) void duplicate(ids);
      } else if (key === "a") {
        event.preventDefault();
        selectMany([...latest.current.nodes.keys()]);
      }
    };
    document.addEventListener("copy", onCopy);
    document.addEventListener("paste", onPaste);
    window.addEventListener("keydown", onKey);
    return () => {
      document.removeEventListener("copy", onCopy);
      document.removeEventListener("paste", onPaste);
      window.removeEventListener("keydown", onKey);
    };
  }, [rf, latest, toast, paste, duplicate, selectMany, readOnly]);

  return { duplicate };
}
