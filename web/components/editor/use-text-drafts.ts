"use client";

import { useCallback, useEffect, useRef, useState } from "react";
import type { LatestGraph, UpdateNode } from "./use-node-writes";

const TEXT_SAVE_DELAY_MS = 500;

/**
 * Text and JSON asset content as it is typed, shared by the node card and the panel, saved after a pause in
 * typing. Invalid JSON is not saved (the field shows why); a draft is dropped once what it says is saved. Each save
 * names the revision the typing started from: if the text was changed elsewhere meanwhile, the save is refused, the
 * typed text stays in the field and a toast says who changed it (typing on saves it over theirs).
 */
export function useTextDrafts(updateNode: UpdateNode, latest: LatestGraph, toast: (message: string) => void) {
  const [drafts, setDrafts] = useState<ReadonlyMap<string, string>>(new Map());
  const timers = useRef(new Map<string, ReturnType<typeof setTimeout>>());
  const bases = useRef(new Map<string, number | undefined>());

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
      const saved = await updateNode(
        id,
        { asset: { content: text } },
        {
          ifRevision: bases.current.get(id),
          onSaved: (node) => bases.current.set(id, node.revision),
          onConflict: ({ message, current }) => {
            bases.current.set(id, current.revision);
            toast(`${message}. Your text is still in the field; typing on saves it over theirs.`);
          },
        },
      );
      if (!saved) return;
      setDrafts((m) => {
        if (m.get(id) !== text) return m;
        const next = new Map(m);
        next.delete(id);
        bases.current.delete(id);
        return next;
      });
    },
    [updateNode, latest, toast],
  );

  const setTextDraft = useCallback(
    (id: string, text: string) => {
      if (!bases.current.has(id)) bases.current.set(id, latest.current.nodes.get(id)?.revision);
      setDrafts((m) => new Map(m).set(id, text));
      clearTimeout(timers.current.get(id));
      timers.current.set(
        id,
        setTimeout(() => void save(id, text), TEXT_SAVE_DELAY_MS),
      );
    },
    [save, latest],
  );

  useEffect(() => {
    const pending = timers.current;
    return () => {
      for (const t of pending.values()) clearTimeout(t);
    };
  }, []);

  return { drafts, setTextDraft };
}
