"use client";

import { useCallback, useEffect, useRef, useState } from "react";
import type { LatestGraph, UpdateNode } from "./use-node-writes";

const TEXT_SAVE_DELAY_MS = 500;

/**
 * Text and JSON asset content as it is typed, shared by the node card and the panel, saved after a pause in
 * typing. Invalid JSON is not saved (the field shows why); a draft is dropped once what it says is saved.
 */
export function useTextDrafts(updateNode: UpdateNode, latest: LatestGraph) {
  const [drafts, setDrafts] = useState<ReadonlyMap<string, string>>(new Map());
  const timers = useRef(new Map<string, ReturnType<typeof setTimeout>>());

  const save = useCallback(
    async (id: string, text: string) => {
      const type = (latest.current.nodes.get(id)?.asset as { type?: string } | null)?.type;
      if (type === "json") {
        try {
          JSON.parse(text);
        } catch {
          return; // shown under the field; not saved
        }
      }
      if (!(await updateNode(id, { asset: { content: text } }))) return;
      setDrafts((m) => {
        if (m.get(id) !== text) return m;
        const next = new Map(m);
        next.delete(id);
        return next;
      });
    },
    [updateNode, latest],
  );

  const setTextDraft = useCallback(
    (id: string, text: string) => {
      setDrafts((m) => new Map(m).set(id, text));
      clearTimeout(timers.current.get(id));
      timers.current.set(
        id,
        setTimeout(() => void save(id, text), TEXT_SAVE_DELAY_MS),
      );
    },
    [save],
  );

  useEffect(() => {
    const pending = timers.current;
    return () => {
      for (const t of pending.values()) clearTimeout(t);
    };
  }, []);

  return { drafts, setTextDraft };
}
